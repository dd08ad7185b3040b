"""Ready streaming pipelines built on aioinfer (frames in -> preprocess -> infer -> out)."""
