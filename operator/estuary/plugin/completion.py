"""`kubectl_complete-estuary`: shell completion of `kubectl estuary ...` through kubectl itself.

kubectl (1.26+) completes a plugin's arguments by running `kubectl_complete-<plugin>` with the
words typed after the plugin's name (the last one being the word under completion) and reading
cobra's protocol back: one candidate per line, then `:<directive>`. This answers from the same
click commands (`cli.main`) that click's own completion scripts use (`kubectl estuary completion`).
"""

from __future__ import annotations

import sys

from click.shell_completion import ShellComplete

from estuary.plugin.cli import main as cli_main

NO_FILE_COMPLETION = 4  # cobra's ShellCompDirectiveNoFileComp
DEFAULT = 0  # let the shell complete file names


def candidates(words: list[str]) -> tuple[list[str], int]:
    args, incomplete = (words[:-1], words[-1]) if words else ([], "")
    if args and args[0] == "__complete":  # some kubectl versions pass cobra's own verb first
        args = args[1:]
    completer = ShellComplete(cli_main, {}, "kubectl-estuary", "_KUBECTL_ESTUARY_COMPLETE")
    items = completer.get_completions(args, incomplete)
    directive = DEFAULT if any(i.type in ("file", "dir") for i in items) else NO_FILE_COMPLETION
    return [i.value for i in items if i.type == "plain"], directive


def main() -> None:
    values, directive = candidates(sys.argv[1:])
    for value in values:
        print(value)
    print(f":{directive}")


if __name__ == "__main__":
    main()
