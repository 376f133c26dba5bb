"""One module per pipeline stage: `run(cfg, ctx) -> Result`. The order lives in mobilekd.pipeline."""
