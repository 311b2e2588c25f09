"""Vision parts built here (EfficientNet-Lite0, the embedded VLM's encoder)."""
