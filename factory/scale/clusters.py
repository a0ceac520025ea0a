"""The in-process deduplication's verdicts, recomputed from verified candidate pairs.

`factory.dedup.Deduplicator` is greedy and order-dependent: in prompt order, a document is an
exact duplicate of a *kept* document with the same normalized text, else a near-duplicate of the
kept document, among those sharing an LSH band with it, of highest Jaccard >= threshold (ties:
the earliest), else kept. Connected components differ on chains: with A~B, B~C and A!~C the
greedy rule keeps A and C, a component keeps only A. So the buckets stage does not cluster; it
emits facts that do not depend on what is kept, and this pass applies the greedy rule to them:

- PAIR (d, i, J): documents i < d share a band and J(i, d) >= threshold, verified exactly. Only
  the first document of each exact-text group (its *representative*) takes part in pairs.
- REP (r, n): r is the first of an exact-text group with n later copies.
- COPY (d, r): d has the same normalized text as the earlier representative r.
- SKIP (d): a repeated input row (same id and content as an earlier one); the importer keeps one.

Why representatives suffice: a kept document is always the first of its text (a later copy of a
kept text is its exact duplicate), so kept candidates are representatives. A copy d of r is an
exact duplicate of r when r is kept. When r was removed (a near-duplicate of K), d has r's
shingles and bands, so its candidates are r's: K, and any document k kept between r and d with
PAIR (k, r); `open_groups` tracks the best of those for each removed representative with copies
left.

Memory: 8 bytes per removed representative (to answer "is i kept?" for later pairs), one entry
per removed representative with copies still to come, and the events of one document. Events are
read merged in prompt order from the buckets stage's sorted files, never all at once.
"""

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from itertools import groupby

from factory.scale.formats import CONFLICT, COPY, PAIR, REP, SKIP, Event

Dup = tuple[int, str, str, float]  # (order, reason, duplicate_of, similarity)


class RepeatedId(Exception):
    """Two input rows share an id but differ: (order of the later row, order of the first)."""


def greedy_duplicates(events: Iterable[Event]) -> Iterator[Dup]:
    """Duplicate verdicts in prompt order from events sorted by (order, kind, other).

    Documents with no event are kept; nothing is yielded for them.
    """
    removed = array("Q")  # removed representatives, ascending: appended in prompt order
    # removed representative -> [similarity, kept order, kept id, copies still to come]
    open_groups: dict[int, list] = {}

    def is_removed(order: int) -> bool:
        at = bisect_left(removed, order)
        return at < len(removed) and removed[at] == order

    for order, group in groupby(events, key=lambda e: e[0]):
        pairs, rep, copy, skip = [], None, None, False
        for event in group:
            kind = event[1]
            if kind == PAIR:
                pairs.append(event)
            elif kind == REP:
                rep = event
            elif kind == COPY:
                copy = event
            elif kind == SKIP:
                skip = True
            elif kind == CONFLICT:
                raise RepeatedId(order, event[2])
        if copy is not None:
            first = copy[2]
            if first not in open_groups:  # the first of its text was kept
                dup: Dup = (order, "duplicate", copy[6], 1.0)
            else:
                similarity, _, kept_id, left = group_state = open_groups[first]
                dup = (order, "near_duplicate", kept_id, similarity)
                group_state[3] = left - 1
                if left == 1:
                    del open_groups[first]
            yield (order, "skip", "", 0.0) if skip else dup
            continue
        if skip:  # a repeated row that failed validation: no dedup event but the skip
            yield (order, "skip", "", 0.0)
            continue
        best = None
        for event in pairs:  # ascending by the earlier document: ties keep the first
            if not is_removed(event[2]) and (best is None or event[3] > best[3]):
                best = event
        if best is not None:
            removed.append(order)
            if rep is not None:
                open_groups[order] = [best[3], best[2], best[6], rep[4]]
            yield (order, "near_duplicate", best[6], best[3])
            continue
        # Kept: a better candidate for the copies of removed representatives it pairs with.
        for event in pairs:
            state = open_groups.get(event[2])
            if state is not None and event[3] > state[0]:
                state[0], state[1], state[2] = event[3], order, event[5]
