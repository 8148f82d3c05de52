"""Language: chosen from the browser, switched on the page, remembered, and switched back."""

from __future__ import annotations

from playwright.sync_api import expect

from . import pages_helpers  # noqa: F401 - sets the assertion timeout


def test_switch_to_chinese_and_back(page) -> None:
    page.goto("/")
    heading = page.locator("h1")
    expect(heading).to_have_text("See what a convolutional network does to your image")
    # VGG-16 ships untrained; its badge is translated too.
    vgg16_card = page.locator('[data-testid="model-card"][data-model="vgg16"]')
    expect(vgg16_card).to_contain_text("untrained")

    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(heading).to_have_text("看看卷积神经网络如何处理你的图片")
    expect(page.locator("#step-image")).to_contain_text("提供一张图片")
    expect(vgg16_card).to_contain_text("未训练")
    expect(page.get_by_role("button", name="简体中文")).to_have_attribute("aria-pressed", "true")

    page.goto("/models/tiny-vgg/architecture")  # the choice is remembered
    expect(page.locator("th", has_text="感受野")).to_be_visible()
    expect(page.locator('[data-layer="conv1_1"]')).to_contain_text("32 个 3×3×3 卷积核")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator('[data-layer="conv1_1"]')).to_contain_text("32 kernels 3×3×3")


def test_chinese_browser_gets_chinese(new_page) -> None:
    page = new_page(locale="zh-CN")
    page.goto("/")
    expect(page.locator("h1")).to_have_text("看看卷积神经网络如何处理你的图片")
    expect(page.get_by_test_id("image-input")).to_have_attribute(
        "aria-label", "选择要上传的图片文件"
    )
