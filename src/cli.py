"""`python generate.py --cli=True`: chat in the terminal, or answer piped prompts line by line."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import TextIO

from src.evaluate import EvalChunk, Evaluator
from src.params import EvalParams

log = logging.getLogger(__name__)

PROMPT = ">>> "


def run_cli(evaluator: Evaluator, stdin: TextIO, stdout: TextIO) -> int:
    """Interactive chat on a TTY (history kept; Ctrl-C stops an answer, Ctrl-D quits).

    When stdin is not a TTY, each line is one independent prompt and each answer is
    printed on its own line; the exit code is 0 at end of input.
    """
    interactive = stdin.isatty()
    history: list[list[str]] = []
    while True:
        if interactive:
            stdout.write(PROMPT)
            stdout.flush()
        try:
            line = stdin.readline()
        except KeyboardInterrupt:
            stdout.write("\n")
            return 0
        if not line:
            if interactive:
                stdout.write("\n")
            return 0
        prompt = line.strip()
        if not prompt:
            continue
        params = EvalParams(instruction=prompt, chat_conversation=list(history))
        answer = _answer(evaluator, params, stdout, stream=interactive)
        if interactive:
            history.append([prompt, answer])


def _answer(evaluator: Evaluator, params: EvalParams, stdout: TextIO, stream: bool) -> str:
    response = ""
    chunks: Generator[EvalChunk, None, None] = evaluator.evaluate(params)
    try:
        for chunk in chunks:
            response = chunk.response
            if stream:
                stdout.write(chunk.delta)
                stdout.flush()
    except KeyboardInterrupt:
        chunks.close()
        stdout.write(" [stopped]")
    if not stream:
        stdout.write(" ".join(response.splitlines()).strip())
    stdout.write("\n")
    stdout.flush()
    return response
