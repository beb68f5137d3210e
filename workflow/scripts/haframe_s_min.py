"""HAFrame's s_min for one (dataset, gamma): the most negative grid point at which S is PSD."""
from featgeom.frames import find_s_min
from featgeom.hierarchy import read_distance_csv
from featgeom.io import write_json
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    gamma = float(snakemake.wildcards.gamma)
    _, distances = read_distance_csv(snakemake.input.distances)
    s_min = find_s_min(distances, gamma)
    write_json(snakemake.output.s_min, {"gamma": gamma, "s_min": s_min, "num_classes": len(distances)})
    print(f"gamma={gamma}: s_min={s_min:.6f}")
