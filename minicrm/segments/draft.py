"""Rules as the builder holds them mid-edit: which conditions are unfinished (no value yet) and
which nested groups hold nothing else, so the live count can leave them out while saving still
refuses them."""

from dataclasses import dataclass, field
from typing import Any

from minicrm.core.limits import MAX_RULE_DEPTH

from .rules import FIELDS, Loc, RuleError, format_path

# Operators that take no value: a condition with one of them is finished as soon as it is chosen.
NO_VALUE_OPERATORS = frozenset(
    operator.key for spec in FIELDS for operator in spec.operators if operator.value_kind == "none"
) | {"is_empty", "is_not_empty", "is_true", "is_false"}
FIELD_LABELS = {spec.key: spec.label for spec in FIELDS}


@dataclass(frozen=True)
class Pending:
    """A condition or group left out of the count: where it is, and how to name it to people."""

    path: str
    name: str
    is_group: bool = False


@dataclass
class Draft:
    """`countable`: the raw rules without the pending parts, for the count. `index_maps` maps,
    per kept group (by its indices in `countable`), each kept child's index back to the index
    it has in the rules as edited."""

    countable: Any
    pending: list[Pending] = field(default_factory=list)
    index_maps: dict[tuple[int, ...], list[int]] = field(default_factory=dict)

    def original_loc(self, loc: Loc) -> Loc:
        """A location in `countable` as a location in the rules as edited."""
        parts: list[int | str] = []
        kept: tuple[int, ...] = ()
        for position, part in enumerate(loc):
            after_conditions = position > 0 and loc[position - 1] == "conditions"
            if isinstance(part, int) and after_conditions and kept in self.index_maps:
                index_map = self.index_maps[kept]
                mapped = index_map[part] if part < len(index_map) else part
                kept = (*kept, part)
                parts.append(mapped)
            else:
                parts.append(part)
        return tuple(parts)

    def original_errors(self, errors: list[RuleError]) -> list[dict[str, str]]:
        """`{"path", "message"}` per problem, with paths of the rules as edited."""
        return [
            {"path": format_path(self.original_loc(error["loc"])), "message": error["message"]}
            for error in errors
        ]


def _is_group(node: object) -> bool:
    return isinstance(node, dict) and ("conditions" in node or "match" in node)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def condition_unfinished(node: object) -> bool:
    """A condition whose value is still to be typed: none, blank text, no list item, or a
    range with a bound missing. Wrong values are not unfinished: the validator names them."""
    if not isinstance(node, dict) or _is_group(node) or node.get("operator") in NO_VALUE_OPERATORS:
        return False
    value = node.get("value")
    if isinstance(value, list):
        return not value or any(_blank(item) for item in value)
    return _blank(value)


def _row_name(loc: Loc, label: str, *, kind: str = "row") -> str:
    """'row 2 (City)', 'row 1 (Tags) of the group at row 3', 'the empty group at row 2'."""
    indices = [part for part in loc if isinstance(part, int)]
    text = f"{kind} {indices[-1] + 1}" + (f" ({label})" if label else "")
    for index in reversed(indices[:-1]):
        text += f" of the group at row {index + 1}"
    return text


def _label(node: dict[str, Any]) -> str:
    key = str(node.get("field", ""))
    return FIELD_LABELS.get(key, key.split(".", 1)[-1])


def draft_split(data: object) -> Draft:
    """The rules without unfinished conditions and without nested groups left empty (by the
    user or by leaving those out). Data that is not a rule tree comes back as it is, for the
    validator to reject."""
    draft = Draft(countable=data)
    if not isinstance(data, dict) or not isinstance(data.get("conditions"), list):
        return draft

    def visit(group: dict[str, Any], loc: Loc, kept: tuple[int, ...]) -> dict[str, Any]:
        children: list[Any] = []
        index_map: list[int] = []
        for index, node in enumerate(group["conditions"]):
            node_loc = (*loc, "conditions", index)
            # Past the depth limit the tree is left as it is, for the validator to reject.
            too_deep = len(kept) >= MAX_RULE_DEPTH
            if _is_group(node) and isinstance(node.get("conditions"), list) and not too_deep:
                inner = visit(node, node_loc, (*kept, len(children)))
                if not inner["conditions"]:
                    draft.index_maps.pop((*kept, len(children)), None)
                    # A group of unfinished rows is named by its rows; an empty one by itself.
                    if not node["conditions"]:
                        name = _row_name(node_loc, "", kind="the empty group at row")
                        draft.pending.append(Pending(format_path(node_loc), name, is_group=True))
                    continue
                node = inner
            elif condition_unfinished(node):
                name = _row_name(node_loc, _label(node))
                draft.pending.append(Pending(format_path(node_loc), name))
                continue
            index_map.append(index)
            children.append(node)
        draft.index_maps[kept] = index_map
        return {**group, "conditions": children}

    draft.countable = visit(data, (), ())
    return draft
