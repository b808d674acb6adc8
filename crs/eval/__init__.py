"""Evaluation of the agent: scripted multi-turn dialogues with expectations per turn."""

from crs.eval.scripted import (
    Dialogue,
    DialogueError,
    ScriptedReport,
    ScriptTurn,
    load_dialogues,
    run_scripted,
)

__all__ = ["Dialogue", "DialogueError", "ScriptTurn", "ScriptedReport", "load_dialogues", "run_scripted"]
