"""Which code cells of a notebook a given cell needs: a static analysis of the names cells define and use.

The browser test runs an Explore panel's cell and only the cells it needs, instead of the whole chapter
(nbval runs every chapter whole already; running it a second time in the browser doubled the suite's
time). A cell *needs* the last earlier cell that binds each name it reads before binding it itself,
plus every cell in between that mutates that object in place (``results[key] = ...``,
``model.weight = ...``), and, transitively, what those cells need. The analysis is conservative
where it is cheap to be (a name read inside a function body counts as read by the cell) and cannot see
mutation through method calls (``results.append(...)``); a dependency it misses shows up as a
``NameError`` or ``KeyError`` when the cells run, never as a silent pass.
"""

from __future__ import annotations

import ast
import builtins

BUILTINS = frozenset(dir(builtins))


def _code(source: str) -> str:
    """The Python of a cell: IPython magics and shell escapes dropped."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def _bound(node: ast.AST) -> set[str]:
    """Names a top-level statement binds in the namespace it runs in."""
    bound = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        bound.add(node.name)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return bound           # names bound inside a body are local to it
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
            bound.add(child.id)
        elif isinstance(child, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue           # comprehension variables are local to the comprehension
        else:
            bound |= _bound(child)
    return bound


def _mutated(node: ast.AST) -> set[str]:
    """Names whose object a statement changes in place: ``x[...] = v``, ``x.a = v``, ``del x[k]``."""
    mutated = set()
    for child in ast.walk(node):
        if isinstance(child, (ast.Subscript, ast.Attribute)) and isinstance(child.ctx, (ast.Store, ast.Del)):
            base = child.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                mutated.add(base.id)
    return mutated


def _arguments(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {a.arg for a in every if a is not None}


def _read(node: ast.AST) -> set[str]:
    """Names a statement reads from the namespace it runs in (a function body's own locals and a
    comprehension's variables excluded; default values and decorators are read where defined)."""
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        outside = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        if not isinstance(node, ast.Lambda):
            outside += node.decorator_list
        body = node.body if isinstance(node.body, list) else [node.body]
        local = _arguments(node.args).union(*(_bound(statement) for statement in body))
        inside = set().union(*(_read(statement) for statement in body)) - local
        return inside.union(*(_read(expr) for expr in outside))
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        targets = {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
        return set().union(*(_read(child) for child in ast.iter_child_nodes(node))) - targets
    return set().union(*(_read(child) for child in ast.iter_child_nodes(node)))


def cell_names(source: str) -> tuple[set[str], set[str], set[str]]:
    """``(binds, mutates, needs)`` of one cell: the names it binds, the names whose objects it changes in
    place, and the names it reads before binding them (builtins excluded)."""
    binds, mutates, needs = set(), set(), set()
    for statement in ast.parse(_code(source)).body:
        needs |= _read(statement) - binds
        binds |= _bound(statement)
        mutates |= _mutated(statement)
    return binds, mutates, needs - BUILTINS


def cells_needed(sources: list[str], target: int) -> list[int]:
    """The positions in ``sources`` (the code cells of a notebook, in order) of the cells that must run
    for cell ``target`` to run as it does after a run of the whole notebook, ``target`` included."""
    if not 0 <= target < len(sources):
        raise ValueError(f"target must be a position in sources (0..{len(sources) - 1}), got {target}")
    names = [cell_names(source) for source in sources]
    needed, todo = {target}, [target]
    while todo:
        cell = todo.pop()
        for name in names[cell][2]:
            binders = [i for i in range(cell) if name in names[i][0]]
            if not binders:
                continue       # a name no earlier cell binds: NameError at run time, as in the notebook
            last = binders[-1]
            for i in [last, *(j for j in range(last + 1, cell) if name in names[j][1])]:
                if i not in needed:
                    needed.add(i)
                    todo.append(i)
    return sorted(needed)
