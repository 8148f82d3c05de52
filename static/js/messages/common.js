// Messages shared by every page: the header, errors, layer kinds, units.
import { registerMessages, t } from "../i18n.js";

registerMessages({
  en: {
    "common.skip": "Skip to content",
    "common.home_link": "convscope home",
    "common.breadcrumb": "You are here",
    "common.language": "Language",
    "common.home": "Home",
    "common.loading": "Loading…",
    "common.retry": "Try again",
    "common.close": "Close",
    "common.architecture": "Architecture",
    "common.overview": "Overview",
    "common.trained": "trained",
    "common.untrained": "untrained",
    "common.untrained_hint": "random weights: predictions are guesses",
    "common.test_accuracy": "test accuracy {acc}",
    "common.params": "{n} parameters",
    "common.input_size": "input {h} × {w} × {c}",
    "common.value_range": "min {min}, max {max}",
    "kind.conv2d": "convolution",
    "kind.relu": "ReLU",
    "kind.leaky_relu": "Leaky ReLU",
    "kind.sigmoid": "sigmoid",
    "kind.tanh": "tanh",
    "kind.maxpool2d": "max pooling",
    "kind.avgpool2d": "average pooling",
    "kind.flatten": "flatten",
    "kind.linear": "fully connected",
    "kind.softmax": "softmax",
    "kind.input": "input",
    "dataset.cifar10": "CIFAR-10 photos",
    "dataset.mnist": "MNIST digits",
    "dataset.imagenet": "ImageNet photos",
    "dataset.custom": "imported model",
    "error.network_error": "The server could not be reached. Check the connection and try again.",
    "error.not_found": "Not found.",
    "error.run_expired": "This run has expired. Upload the image again.",
    "error.not_image": "That file is not an image. Choose a PNG, JPEG, GIF, BMP or WebP picture.",
    "error.too_large": "That file is too large. Choose a smaller image.",
    "error.unprocessable": "The image could not be read. Try another picture.",
    "error.busy": "The server is busy. Wait a few seconds and try again.",
    "error.generic": "Something went wrong: {message}",
  },
  "zh-CN": {
    "common.skip": "跳到正文",
    "common.home_link": "convscope 首页",
    "common.breadcrumb": "当前位置",
    "common.language": "语言",
    "common.home": "首页",
    "common.loading": "加载中…",
    "common.retry": "重试",
    "common.close": "关闭",
    "common.architecture": "网络结构",
    "common.overview": "总览",
    "common.trained": "已训练",
    "common.untrained": "未训练",
    "common.untrained_hint": "权重是随机的：预测只是猜测",
    "common.test_accuracy": "测试准确率 {acc}",
    "common.params": "参数量 {n}",
    "common.input_size": "输入 {h} × {w} × {c}",
    "common.value_range": "最小值 {min}，最大值 {max}",
    "kind.conv2d": "卷积层",
    "kind.relu": "ReLU",
    "kind.leaky_relu": "Leaky ReLU",
    "kind.sigmoid": "sigmoid",
    "kind.tanh": "tanh",
    "kind.maxpool2d": "最大池化",
    "kind.avgpool2d": "平均池化",
    "kind.flatten": "展平",
    "kind.linear": "全连接层",
    "kind.softmax": "softmax",
    "kind.input": "输入层",
    "dataset.cifar10": "CIFAR-10 照片",
    "dataset.mnist": "MNIST 手写数字",
    "dataset.imagenet": "ImageNet 照片",
    "dataset.custom": "导入的模型",
    "error.network_error": "无法连接服务器。请检查网络后重试。",
    "error.not_found": "未找到。",
    "error.run_expired": "这次运行已过期。请重新上传图片。",
    "error.not_image": "这个文件不是图片。请选择 PNG、JPEG、GIF、BMP 或 WebP 图片。",
    "error.too_large": "文件太大。请选择一张更小的图片。",
    "error.unprocessable": "无法读取这张图片。请换一张试试。",
    "error.busy": "服务器正忙。请稍等几秒后重试。",
    "error.generic": "出错了：{message}",
  },
});

/**
 * Plain words for an ApiError, in the current language.
 * Status codes follow docs/API.md: 404 unknown/expired, 413 too large, 415 not an image,
 * 422 undecodable or bad parameters, 503 busy.
 */
export function errorText(err) {
  const status = err?.status ?? 0;
  const code = String(err?.code || "");
  if (status === 0 && code === "network_error") return t("error.network_error");
  if (status === 415 || code.includes("not_image") || code.includes("unsupported"))
    return t("error.not_image");
  if (status === 413) return t("error.too_large");
  if (status === 503) return t("error.busy");
  if (status === 404 && (code.includes("run") || code.includes("expired")))
    return t("error.run_expired");
  if (status === 422 && (code.includes("image") || code.includes("decode")))
    return t("error.unprocessable");
  if (status === 404) return t("error.not_found");
  return t("error.generic", { message: err?.message || String(err) });
}
