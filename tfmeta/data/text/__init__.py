"""Text: few-shot intent detection from raw sentences (BANKING77, HWU64, CLINC150)."""
