"""Ontologies: schema, loading with located errors, compiling to prompts."""

from autolabel.ontology.compiler import CompiledPrompt, PromptCompiler
from autolabel.ontology.loader import load_ontology, parse_ontology
from autolabel.ontology.schema import Label, Ontology, ReviewPolicy, TaskType

__all__ = [
    "CompiledPrompt",
    "Label",
    "Ontology",
    "PromptCompiler",
    "ReviewPolicy",
    "TaskType",
    "load_ontology",
    "parse_ontology",
]
