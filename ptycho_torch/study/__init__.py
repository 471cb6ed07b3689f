"""The dose/overlap study: PtychoPINN against iterative baselines (`ptycho-torch study`).

    ptycho-torch study --preset smoke --output-dir OUT
    ptycho-torch study --config study.yaml --output-dir OUT [--probe-from probe.npz]

One object and one probe; for every dose (mean counts per pattern) and scan overlap, one simulated scan of
that object is split into a TRAIN region and a TEST region: the test positions are the right-most
`test_fraction` of the scan, and train positions whose patch window would share any object pixel with a
test patch window are dropped (a guard band of N + 1 px between patch centres), so the network is judged on
an object region it never saw. The network has two arms (config `arms`), one network per gridsize each:
"unseen" is trained on the train region and reconstructs the test region (generalisation); "self" is
trained self-supervised on the test data itself and reconstructs it, like for like with the iterative
baselines (config `baselines`: ML, ePIE, pty-chi's LSQML), which reconstruct the test region from its own
data alone. With `continue_from: {2: 1}` each gridsize-2 network starts from the weights of the gridsize-1
network of its own condition and arm (that bundle is one of its unit's inputs). Every method, and a constant object for reference, is scored by metrics.evaluate on one
region per condition: the pixels where the test positions' summed probe intensity (peak 1) is >= 0.1.

Stages, run in this order, each made of units (one per condition): datasets, train, infer, baseline,
evaluate, comparison. `manifest.json` records every unit's inputs hash (its config slice plus the SHA256 of
the upstream files it reads) and the SHA256 of each output. A unit is reused when its inputs hash matches
and every output is present and unchanged; otherwise it runs again, and so, through the hashes, does
whatever reads its outputs. An interrupted training resumes from its checkpoint.

Output folder: datasets/<dose>_<overlap>/{train,test,region}.npz, runs/<dose>_<overlap>_gs<g>[_self]/
(bundle, history, recon.npz, metrics.json), runs/<dose>_<overlap>_<baseline method>/ (one per baseline) and
.../_constant/, metrics.csv,
comparison.md, figures/*.png, study.yaml (the resolved config; a probe or object file by its name and
SHA256) and manifest.json. The config is validated on load, before anything is written: unknown keys are
rejected with their path (e.g. `train.epoch`).

Modules, in the order a study uses them: config (the settings, conditions and labels), load (YAML ->
config), split (the train/test split of a scan), sources (object and probe), pipeline (manifest, units,
runner), stages (what each unit does), table (metrics.csv and the head-to-head), figures, report
(comparison.md), run (the units laid out, the command). presets/ and templates/ hold the packaged YAML and
the report's template.
"""
from __future__ import annotations

from ptycho_torch.errors import StudyConfigError as StudyConfigError
from ptycho_torch.errors import StudyError as StudyError
from ptycho_torch.study.config import StudyConfig as StudyConfig
from ptycho_torch.study.load import load_config as load_config
from ptycho_torch.study.load import parse_config as parse_config
from ptycho_torch.study.run import run_study as run_study
from ptycho_torch.study.run import study_command as study_command
