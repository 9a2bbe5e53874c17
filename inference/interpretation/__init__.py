"""Looking inside a NucEL model: in-silico mutagenesis, attention maps, JASPAR motifs, and their pictures.

`inference/interpret.py` (nucel-interpret) is the command; these modules are its importable pieces.
"""
