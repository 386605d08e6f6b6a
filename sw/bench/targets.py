"""The benchmark's targets, each with pass / miss / n/a and the margin: utilisation on the
Longformer-like heads, the cycle model against the RTL, and each FPGA family's Fmax."""

from __future__ import annotations

#: utilisation (ideal / engine cycles) on every Longformer-like workload, at each lane count
UTIL_TARGET = 0.95
#: largest relative error of the cycle model against measured RTL cycles
MODEL_TOL = 0.02
#: FPGA family -> (device, Fmax target in MHz)
FMAX_TARGETS = {"ice40": ("iCE40UP5K", 36.0), "ecp5": ("ECP5-85F", 100.0)}


def check_targets(rows: list[dict], boards: dict, lanes_list, model_reason) -> list[dict]:
    out = []
    for lanes in lanes_list:
        us = [(r["lanes"][str(lanes)]["utilisation"], r["name"]) for r in rows
              if r["kind"].startswith("longformer")]
        known = [u for u in us if u[0] is not None]
        t = {"target": f"utilisation >= {UTIL_TARGET:.0%} on Longformer-like, lanes = {lanes}"}
        if not known:
            t.update(status="n/a", note=model_reason or "no engine cycles")
        else:
            worst, name = min(known)
            t.update(status="pass" if worst >= UTIL_TARGET else "miss", value=worst,
                     margin=worst - UTIL_TARGET,
                     note=f"worst {worst:.1%} ({name}), {100 * (worst - UTIL_TARGET):+.1f} pp"
                          + ("" if len(known) == len(us) else f"; {len(us) - len(known)} "
                                                              "workloads without cycles"))
        out.append(t)
    errs = [(abs(f["model_rel_err"]), r["name"], la) for r in rows
            for la, f in r["lanes"].items() if f.get("model_rel_err") is not None]
    t = {"target": f"cycle model within {MODEL_TOL:.0%} of RTL"}
    if not errs:
        t.update(status="n/a", note="needs both the cycle model and measured RTL runs "
                                    "(--rtl-max-n)" if model_reason is None else model_reason)
    else:
        worst, name, la = max(errs)
        t.update(status="pass" if worst <= MODEL_TOL else "miss", value=worst,
                 margin=MODEL_TOL - worst,
                 note=f"worst {worst:.2%} ({name}, lanes {la}) over {len(errs)} runs")
    out.append(t)
    for fam, (label, mhz) in FMAX_TARGETS.items():
        t = {"target": f"{label} Fmax >= {mhz:g} MHz"}
        got = [(b["fmax_mhz"], name) for name, b in boards.items()
               if b.get("family") == fam and b.get("fmax_mhz")]
        failed = [(name, b.get("build_error") or "no Fmax in the build's JSON")
                  for name, b in boards.items() if b.get("family") == fam and not b.get("fmax_mhz")]
        if not got and failed:
            t.update(status="miss", note="; ".join(f"{n}: {e}" for n, e in failed))
        elif not got:
            t.update(status="n/a", note="no build")
        else:
            f, name = min(got)
            t.update(status="pass" if f >= mhz else "miss", value=f, margin=f - mhz,
                     note=f"{f:.1f} MHz ({name}), {f - mhz:+.1f} MHz ({(f - mhz) / mhz:+.0%})")
        out.append(t)
    return out
