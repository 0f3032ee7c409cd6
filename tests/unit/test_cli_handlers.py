"""Every command the grammar registers resolves to a handler that takes the parsed arguments
and returns an exit code: a typo in a ``module:function`` name fails here, not in a user's
hands. Helpers below the handlers take named values, never the ``argparse.Namespace``."""

from __future__ import annotations

import argparse
import ast
import inspect
from pathlib import Path

import nbterm.cli
from nbterm.cli.main import build_parser, resolve_handler


def _commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> dict[str, str]:
    """Every runnable command line (``config check``, ``up``...) and its handler's name."""
    found: dict[str, str] = {}
    for action in parser._actions:  # argparse keeps its subcommands here
        if isinstance(action, argparse._SubParsersAction):
            for word, sub in action.choices.items():
                found |= _commands(sub, (*words, word))
    handler = parser.get_default("handler")
    if handler is not None:
        found[" ".join(words)] = handler
    return found


def test_every_registered_command_resolves_to_a_typed_handler() -> None:
    commands = _commands(build_parser())
    assert {"up", "down", "sync", "launch", "config check", "ssh", "status"} <= set(commands)
    for command, name in commands.items():
        handler = resolve_handler(name)
        signature = inspect.signature(handler)
        assert list(signature.parameters) == ["args"], command
        assert signature.parameters["args"].annotation in ("argparse.Namespace",), command
        assert signature.return_annotation == "int", command


def test_only_handlers_take_the_namespace() -> None:
    """A function that is not a ``cmd_`` handler takes named values: what it reads is typed."""
    offenders = []
    for path in Path(nbterm.cli.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                takes_args = any(
                    arg.annotation is not None and "Namespace" in ast.unparse(arg.annotation)
                    for arg in node.args.args + node.args.kwonlyargs
                )
                if takes_args and not node.name.startswith("cmd_"):
                    offenders.append(f"{path.name}:{node.name}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == "args"
            ):
                offenders.append(f"{path.name}: getattr(args, ...) at line {node.lineno}")
    assert not offenders
