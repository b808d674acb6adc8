"""How people and programs use crs: the command line, the Gradio page with its rendering and feedback, and the page's sessions."""
