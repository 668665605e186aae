"""Text anatomy (LLM descriptions of action phases) and visual anatomy (temporal phases)."""
