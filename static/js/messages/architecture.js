// Messages of the architecture table.
import { registerMessages } from "../i18n.js";

registerMessages({
  en: {
    "arch.title": "Architecture",
    "arch.n_classes": "{n} classes",
    "arch.total_params": "Parameters",
    "arch.total_flops": "FLOPs per image",
    "arch.total_layers": "Layers",
    "arch.caption": "Every layer of the network, in order, with its shape, weights and cost",
    "arch.col_layer": "Layer",
    "arch.col_kind": "Kind",
    "arch.col_hp": "Hyper-parameters",
    "arch.col_output": "Output (H × W × C)",
    "arch.col_weights": "Weights + biases",
    "arch.col_params": "Parameters",
    "arch.col_flops": "FLOPs",
    "arch.col_rf": "Receptive field",
    "arch.hp_input": "normalised: (x − mean) / std per channel",
    "arch.hp_conv": "{n} kernels {k}, stride {s}, padding {p}",
    "arch.hp_conv_dilated": "{n} kernels {k}, stride {s}, padding {p}, dilation {d}",
    "arch.hp_pool": "window {k}, stride {s}",
    "arch.hp_pool_padded": "window {k}, stride {s}, padding {p}",
    "arch.hp_linear": "{i} inputs → {o} neurons",
    "arch.hp_flatten": "{from} → {n} values",
    "arch.rf_full": "whole image",
    "arch.totals": "Total",
    "arch.total_breakdown": "{w} weights + {b} biases",
    "arch.note_weights":
      "A convolution's weight count is kernel height × kernel width × input depth × number of kernels, plus one bias per kernel: the same kernels slide over every position, so the count does not depend on the image size (weight sharing).",
    "arch.note_shape":
      "Output size of a convolution or pooling: ⌊(n + 2p − d(f − 1) − 1) / s⌋ + 1 for input size n, padding p, dilation d, kernel f and stride s.",
    "arch.note_flops":
      "FLOPs count one multiplication and one addition as two operations. The receptive field is the region of the input image one value of the layer depends on.",
  },
  "zh-CN": {
    "arch.title": "网络结构",
    "arch.n_classes": "{n} 个类别",
    "arch.total_params": "参数量",
    "arch.total_flops": "每张图片的 FLOPs",
    "arch.total_layers": "层数",
    "arch.caption": "网络的每一层（按顺序）及其输出尺寸、权重和计算量",
    "arch.col_layer": "层",
    "arch.col_kind": "类型",
    "arch.col_hp": "超参数",
    "arch.col_output": "输出尺寸（H × W × C）",
    "arch.col_weights": "权重 + 偏置",
    "arch.col_params": "参数量",
    "arch.col_flops": "FLOPs",
    "arch.col_rf": "感受野",
    "arch.hp_input": "标准化：每个通道 (x − 均值) / 标准差",
    "arch.hp_conv": "{n} 个 {k} 卷积核，步长 {s}，填充 {p}",
    "arch.hp_conv_dilated": "{n} 个 {k} 卷积核，步长 {s}，填充 {p}，膨胀率 {d}",
    "arch.hp_pool": "窗口 {k}，步长 {s}",
    "arch.hp_pool_padded": "窗口 {k}，步长 {s}，填充 {p}",
    "arch.hp_linear": "{i} 个输入 → {o} 个神经元",
    "arch.hp_flatten": "{from} → {n} 个值",
    "arch.rf_full": "整张图片",
    "arch.totals": "合计",
    "arch.total_breakdown": "{w} 个权重 + {b} 个偏置",
    "arch.note_weights":
      "卷积层的权重数 = 卷积核高 × 卷积核宽 × 输入深度 × 卷积核个数，再加上每个卷积核一个偏置：同一组卷积核在每个位置上重复使用（权值共享），所以参数量与图片大小无关。",
    "arch.note_shape":
      "卷积或池化的输出尺寸：⌊(n + 2p − d(f − 1) − 1) / s⌋ + 1，其中 n 为输入尺寸，p 为填充，d 为膨胀率，f 为卷积核大小，s 为步长。",
    "arch.note_flops":
      "FLOPs 把一次乘法和一次加法算作两次运算。感受野是该层一个值所依赖的输入图像区域。",
  },
});
