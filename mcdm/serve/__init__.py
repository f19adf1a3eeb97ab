"""``mcdm serve``: the browser page over a composition (Gradio). Imported only by the command: Gradio is optional."""
