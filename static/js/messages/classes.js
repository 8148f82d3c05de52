// Class names in Simplified Chinese for the built-in datasets (ImageNet keeps its English names).
import { getLang } from "../i18n.js";

const ZH = {
  airplane: "飞机",
  automobile: "汽车",
  bird: "鸟",
  cat: "猫",
  deer: "鹿",
  dog: "狗",
  frog: "青蛙",
  horse: "马",
  ship: "船",
  truck: "卡车",
};

/** The class name to show in the current language. */
export function className(name) {
  return getLang() === "zh-CN" && ZH[name] ? ZH[name] : name;
}
