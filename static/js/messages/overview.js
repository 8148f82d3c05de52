// Messages of the run overview, including the "where am I" line for each layer kind.
import { registerMessages } from "../i18n.js";

registerMessages({
  en: {
    "ov.title": "What the network does to your image",
    "ov.architecture_link": "architecture table",
    "ov.another_image": "try another image",
    "ov.prediction": "Prediction:",
    "ov.predictions_label": "Probability of each class",
    "ov.map_label": "{layer}, channel {c}: open the layer view",
    "ov.map_title": "{layer} · channel {c}",
    "ov.neurons_label":
      "{layer}: {n} neurons, brightness shows activation. Arrow keys choose a neuron, Enter opens it.",
    "ov.neuron_title": "{layer} · neuron {i}",
    "ov.value": "value",
    "ov.top_neuron": "brightest #{i}: {v}",
    "ov.show_all": "Show all {n}",
    "ov.show_fewer": "Show fewer",
    "ov.more_short": "+{n}",
    "ov.fewer_short": "−",
    "ov.show_all_classes": "Show all {n} classes",
    "ov.show_top": "Show the top 10",
    "ov.legend_label": "Colour scale from {min} to {max}",
    "ov.input_alt": "The input image as the network sees it",
    "ov.red": "red channel",
    "ov.green": "green channel",
    "ov.blue": "blue channel",
    "ov.cam_title": "Where did the network look? (Grad-CAM)",
    "ov.cam_class": "Class",
    "ov.cam_opacity": "Opacity",
    "ov.cam_help":
      "Bright, yellow regions raised the score of the chosen class the most; clear regions did not. (Grad-CAM: the last convolution's maps, weighted by the gradient of the class score.)",
    "ov.cam_failed": "The Grad-CAM map could not be computed. Try again in a moment.",
    "ov.read_title": "How to read this page",
    "ov.read_columns":
      "Each column is one layer, from the input on the left to the probabilities on the right. Each small square is one channel (feature map) of that layer.",
    "ov.read_diverging":
      "Signed values (convolution outputs): blue is negative, white is zero, red is positive.",
    "ov.read_sequential":
      "Non-negative values (after ReLU and pooling): dark violet is zero, yellow is the largest value of the layer.",
    "ov.read_scale":
      "All channels of one layer share one colour scale (the legend under the column), so their colours can be compared.",
    "ov.read_click":
      "Hover a map to enlarge it; click it (or press Enter) to see how each of its values is computed.",
    "where.input":
      "Input: the image as the network sees it, {shape} (height × width × channels), after subtracting the mean and dividing by the standard deviation of each channel.",
    "where.conv2d":
      "{name} (convolution): {n} kernels of size {k}×{c} slide over the {in} input with stride {s} and padding {p}. Each kernel gives one feature map, so the output is {out}.",
    "where.relu":
      "{name} (ReLU): every negative value becomes 0 and positive values pass unchanged, max(0, x). The shape stays {out}.",
    "where.leaky_relu":
      "{name} (Leaky ReLU): negative values are multiplied by a small slope instead of set to 0, so these units never go fully dead. The shape stays {out}.",
    "where.sigmoid": "{name} (sigmoid): squashes every value into (0, 1). The shape stays {out}.",
    "where.tanh": "{name} (tanh): squashes every value into (−1, 1). The shape stays {out}.",
    "where.maxpool2d":
      "{name} (max pooling): keeps the largest value of each {k} window, moving with stride {s}, in each channel separately: {in} becomes {out}. No parameters.",
    "where.avgpool2d":
      "{name} (average pooling): keeps the mean of each {k} window, moving with stride {s}, in each channel separately: {in} becomes {out}. No parameters.",
    "where.flatten":
      "{name} (flatten): the {in} maps are laid out one after another as a single vector of {size} values, ready for the fully connected layers.",
    "where.linear":
      "{name} (fully connected): each of the {n} neurons multiplies all {i} inputs by its own weights, adds them up and adds a bias (y = Wx + b). Bright neurons are the ones that light up.",
    "where.softmax":
      "{name} (softmax): turns the {n} scores into probabilities that add up to 1. The largest one is the prediction.",
    "where.generic": "{name}: output {out}.",
  },
  "zh-CN": {
    "ov.title": "网络如何一步步处理你的图片",
    "ov.architecture_link": "网络结构表",
    "ov.another_image": "换一张图片",
    "ov.prediction": "预测：",
    "ov.predictions_label": "每个类别的概率",
    "ov.map_label": "{layer}，通道 {c}：打开这一层的详细视图",
    "ov.map_title": "{layer} · 通道 {c}",
    "ov.neurons_label": "{layer}：{n} 个神经元，亮度表示激活值。用方向键选择神经元，按回车打开。",
    "ov.neuron_title": "{layer} · 神经元 {i}",
    "ov.value": "值",
    "ov.top_neuron": "最亮 #{i}：{v}",
    "ov.show_all": "显示全部 {n} 个",
    "ov.show_fewer": "收起",
    "ov.more_short": "+{n}",
    "ov.fewer_short": "−",
    "ov.show_all_classes": "显示全部 {n} 个类别",
    "ov.show_top": "只显示前 10 个",
    "ov.legend_label": "颜色刻度：从 {min} 到 {max}",
    "ov.input_alt": "网络看到的输入图片",
    "ov.red": "红色通道",
    "ov.green": "绿色通道",
    "ov.blue": "蓝色通道",
    "ov.cam_title": "网络在看哪里？（Grad-CAM）",
    "ov.cam_class": "类别",
    "ov.cam_opacity": "不透明度",
    "ov.cam_help": "明亮的黄色区域最能提高所选类别的得分，透明区域几乎没有作用。（Grad-CAM：用类别得分的梯度对最后一个卷积层的特征图加权求和。）",
    "ov.cam_failed": "无法计算 Grad-CAM 图。请稍后重试。",
    "ov.read_title": "怎样看这一页",
    "ov.read_columns":
      "每一列是一层，从左边的输入层到右边的概率。每个小方块是这一层的一个通道（特征图）。",
    "ov.read_diverging": "有正有负的值（卷积层输出）：蓝色为负，白色为零，红色为正。",
    "ov.read_sequential": "非负的值（ReLU 和池化之后）：深紫色为零，黄色为这一层的最大值。",
    "ov.read_scale": "同一层的所有通道共用一个颜色刻度（列下方的图例），所以颜色可以互相比较。",
    "ov.read_click": "鼠标悬停可放大特征图；点击它（或按回车）查看每个值是怎样算出来的。",
    "where.input":
      "输入层：网络看到的图片，{shape}（高 × 宽 × 通道），每个通道都已减去均值并除以标准差。",
    "where.conv2d":
      "{name}（卷积层）：{n} 个 {k}×{c} 的卷积核以步长 {s}、填充 {p} 在 {in} 的输入上滑动。每个卷积核得到一张特征图，所以输出是 {out}。",
    "where.relu": "{name}（ReLU）：负值变成 0，正值保持不变，即 max(0, x)。形状仍是 {out}。",
    "where.leaky_relu":
      "{name}（Leaky ReLU）：负值乘以一个小斜率而不是变成 0，神经元不会完全“死掉”。形状仍是 {out}。",
    "where.sigmoid": "{name}（sigmoid）：把每个值压缩到 (0, 1)。形状仍是 {out}。",
    "where.tanh": "{name}（tanh）：把每个值压缩到 (−1, 1)。形状仍是 {out}。",
    "where.maxpool2d":
      "{name}（最大池化）：在每个通道上分别取每个 {k} 窗口中的最大值，步长 {s}：{in} 变成 {out}。没有参数。",
    "where.avgpool2d":
      "{name}（平均池化）：在每个通道上分别取每个 {k} 窗口的平均值，步长 {s}：{in} 变成 {out}。没有参数。",
    "where.flatten":
      "{name}（展平）：把 {in} 的特征图依次排成一个长度为 {size} 的向量，交给全连接层。",
    "where.linear":
      "{name}（全连接层）：{n} 个神经元中的每一个都把全部 {i} 个输入乘以自己的权重、求和再加上偏置（y = Wx + b）。亮的神经元就是被点亮的神经元。",
    "where.softmax": "{name}（softmax）：把 {n} 个得分变成加起来等于 1 的概率。最大的那个就是预测。",
    "where.generic": "{name}：输出 {out}。",
  },
});
