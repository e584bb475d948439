"""Judging a run's rows: sanity checks, the per-input worst case, the gradient-masking guard and the verdict.

`sanity` checks rows (within one, and across rows evaluated on the same inputs); `worst_case`
combines per-input outcomes; `guard` turns evidence into masking findings; `guard_plan` picks
the guard's own attacks for a run (it imports the attacks, and so torch: import it by name);
`verdict` adds the worst-case rows and the `masking?` flags. Everything but `guard_plan` works on
records and numpy arrays only, so the gate and the reports judge without torch.
"""
