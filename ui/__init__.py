"""The web front end: a Gradio ChatInterface over the `chat` service (the only package importing gradio)."""
