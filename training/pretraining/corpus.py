"""A corpus of several genomes and how they are mixed: the manifest (`--corpus corpus.yaml`, or the config's
`corpus:` key) and the rule that turns it into each genome's share of the training batches.

    sampling: weight            # weight | size | size^ALPHA (e.g. size^0.5): see `shares`
    genomes:
      - name: human
        fasta: genomes/hg38_*.fa.gz       # a path or a glob, or a list of them (relative to this file)
        weight: 2                         # optional, default 1
        group: vertebrates                # optional
        validation_records: [chr2]        # optional: these records of this genome held out whole
      - name: yeast
        fasta: [genomes/yeast.fa.gz]
    groups:                               # optional: each group's share (default 1 each)
      vertebrates: 1

The invariant: in every epoch genome g serves exactly round(share_g x windows) of the items (largest remainder),
its windows in fresh seeded permutations (cycled when a small genome is upweighted), and its j-th item lands at a
random point of the j-th of as many equal stretches of the epoch; so every stretch of training, however short,
holds each genome at its share to within about one window, the tokens too (every window is one crop length), on
any number of processes and after a resume, and the order is a function of (seed, epoch) only.
"""

import glob
import os
import re

import numpy as np

KEYS = ("sampling", "genomes", "groups")
GENOME_KEYS = ("name", "fasta", "weight", "group", "validation_records")
SIZE_POWER = re.compile(r"^size\^([0-9.]+)$")
MIXTURE_STREAM = 7  # the epoch order's random stream, apart from crops (genome_windows) and masks (batches)


def sampling_exponent(rule, where="corpus"):
    """The exponent α of `size^α` a sampling rule names: weight = 0, size = 1, size^α."""
    if rule == "weight":
        return 0.0
    if rule == "size":
        return 1.0
    found = SIZE_POWER.match(str(rule))
    if found:
        try:
            return float(found.group(1))
        except ValueError:
            pass
    raise ValueError(f"{where} sampling={rule!r}: expected weight, size or size^ALPHA (e.g. size^0.5)")


def resolve(manifest, base_directory, where):
    """The manifest as the config keeps it: every key checked, `fasta` globs expanded to sorted absolute paths
    (relative ones from `base_directory`), defaults written out. `where` names the file in messages."""
    if not isinstance(manifest, dict):
        raise ValueError(f"{where}: expected a mapping with a `genomes:` list")
    unknown = sorted(set(manifest) - set(KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected {', '.join(KEYS)}")
    sampling = manifest.get("sampling", "weight")
    sampling_exponent(sampling, where)
    genomes = manifest.get("genomes")
    if not isinstance(genomes, list) or not genomes:
        raise ValueError(f"{where} genomes: expected a list of genomes, each with a name and fasta")
    resolved, names = [], set()
    for number, genome in enumerate(genomes, 1):
        here = f"{where} genomes[{number}]"
        if not isinstance(genome, dict):
            raise ValueError(f"{here}: expected a mapping with name and fasta")
        unknown = sorted(set(genome) - set(GENOME_KEYS))
        if unknown:
            raise ValueError(f"{here}: unknown key(s) {unknown}; expected {', '.join(GENOME_KEYS)}")
        name = genome.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{here} name: expected the genome's name (text)")
        if name in names:
            raise ValueError(f"{here} name={name!r}: given twice; name each genome once")
        names.add(name)
        here = f"{where} genome {name!r}"
        weight = genome.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise ValueError(f"{here} weight={weight!r}: expected a positive number")
        patterns = genome.get("fasta")
        patterns = [patterns] if isinstance(patterns, str) else patterns
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"{here} fasta: expected a path or glob, or a list of them")
        paths = []
        for pattern in patterns:
            full = pattern if os.path.isabs(pattern) else os.path.join(base_directory, pattern)
            matched = sorted(glob.glob(full)) if glob.has_magic(full) else [full] if os.path.isfile(full) else []
            if not matched:
                raise ValueError(f"{here} fasta {pattern!r}: no such file ({full})")
            paths += [os.path.abspath(path) for path in matched]
        records = genome.get("validation_records", [])
        if not isinstance(records, list) or not all(isinstance(r, str) for r in records):
            raise ValueError(f"{here} validation_records: expected a list of record names")
        group = genome.get("group")
        if group is not None and not isinstance(group, str):
            raise ValueError(f"{here} group={group!r}: expected a group name (text)")
        resolved.append({"name": name, "fasta": paths, "weight": float(weight), "group": group,
                         "validation_records": records})
    groups = manifest.get("groups") or {}
    if not isinstance(groups, dict):
        raise ValueError(f"{where} groups: expected a mapping of group name to weight")
    named = {genome["group"] for genome in resolved if genome["group"] is not None}
    for group, weight in groups.items():
        if group not in named:
            raise ValueError(f"{where} groups: {group!r} is no genome's group (groups: {sorted(named)})")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise ValueError(f"{where} groups {group!r}: weight={weight!r}: expected a positive number")
    return {"sampling": sampling, "genomes": resolved, "groups": {group: float(w) for group, w in groups.items()}}


def identity(corpus):
    """What a resume must keep: everything but the files' paths (they may move; their content is checked by
    checksum, as for `fasta`)."""
    if not corpus:
        return corpus
    return {**corpus, "genomes": [{key: value for key, value in genome.items() if key != "fasta"}
                                  for genome in corpus["genomes"]]}


def fasta_files(corpus):
    """Every genome's files in manifest order: the sources of the run's genome store."""
    return [path for genome in corpus["genomes"] for path in genome["fasta"]]


def genome_of_source(corpus):
    """The genome number of each store source (the files in `fasta_files` order)."""
    return [number for number, genome in enumerate(corpus["genomes"]) for _ in genome["fasta"]]


def shares(corpus, windows_per_genome):
    """Each genome's share of the training items: score_g = weight_g x size_g^α (α from `sampling`; size_g = the
    genome's training windows, so bases that pass the N and repeat filters). Without groups, shares are the scores
    normalised; with groups, each group's share is its weight (default 1) normalised over the groups, split among its
    genomes by score (a genome without a group is a group of its own, weight 1)."""
    alpha = sampling_exponent(corpus["sampling"])
    sizes = np.asarray(windows_per_genome, dtype=np.float64)
    empty = [genome["name"] for genome, size in zip(corpus["genomes"], sizes) if size == 0]
    if empty:
        raise ValueError(f"corpus genome(s) {empty}: no training window (too short, or too many N/repeats for the "
                         "filters); remove them or lower window_length")
    scores = np.array([genome["weight"] for genome in corpus["genomes"]]) * sizes ** alpha
    if not any(genome["group"] for genome in corpus["genomes"]):
        return scores / scores.sum()
    groups = [genome["group"] or f"genome:{genome['name']}" for genome in corpus["genomes"]]
    group_weight = {group: corpus["groups"].get(group, 1.0) for group in groups}
    total = sum(group_weight.values())
    within = {group: sum(score for g, score in zip(groups, scores) if g == group) for group in group_weight}
    return np.array([group_weight[g] / total * score / within[g] for g, score in zip(groups, scores)])


def quotas(shares_, items):
    """Items per genome: `items` split by `shares_`, rounded by largest remainder (they sum to `items`)."""
    exact = np.asarray(shares_) * items
    counts = np.floor(exact).astype(np.int64)
    remainder = items - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:remainder]] += 1
    return counts


class Mixture:
    """The epoch order of a corpus's training windows (see the module's invariant)."""

    def __init__(self, shares_):
        self.shares = np.asarray(shares_, dtype=np.float64)

    def epoch_order(self, genome_ids, seed, epoch):
        """Item indices of one epoch (`len(genome_ids)` of them): window i, or `i + k x len` for its (k+1)-th
        serving in the epoch."""
        items = len(genome_ids)
        rng = np.random.default_rng((seed, epoch, MIXTURE_STREAM))
        parts, times = [], []
        for genome, quota in enumerate(quotas(self.shares, items)):
            members = np.flatnonzero(genome_ids == genome)
            servings = -(-int(quota) // len(members)) if len(members) else 0
            drawn = [members[rng.permutation(len(members))] + k * items for k in range(servings)]
            parts.append(np.concatenate(drawn)[:quota] if drawn else np.zeros(0, dtype=np.int64))
            # its j-th item falls at a random point of the j-th of `quota` equal stretches of the epoch
            times.append((np.arange(quota) + rng.random(quota)) / max(quota, 1))
        return np.concatenate(parts)[np.argsort(np.concatenate(times), kind="stable")]


def realised_token_shares(windows, items_per_epoch, items_served, tokens_per_window):
    """Tokens each genome actually fed the model when `items_served` windows were trained on (all processes
    together), `items_per_epoch` of each epoch's order: the ranks' shards of an epoch's first k items together are
    exactly its first k items (batches.py). Returns (tokens per genome, share of each)."""
    counts = np.zeros(int(windows.genome_ids.max(initial=0)) + 1, dtype=np.int64)
    epoch = 0
    while items_served > 0:
        take = min(items_per_epoch, items_served)
        order = windows.epoch_order(epoch)[:take]
        counts += np.bincount(windows.genome_ids[order % len(windows)], minlength=len(counts))
        items_served -= take
        epoch += 1
    tokens = counts * tokens_per_window
    return tokens, tokens / max(int(tokens.sum()), 1)
