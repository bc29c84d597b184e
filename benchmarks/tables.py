"""The benchmark results as Markdown, each figure next to its reference and target."""


def _row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(header, rows):
    return [_row(header), "|" + "---|" * len(header)] + [_row(r) for r in rows] + [""]


def sweep_stages(results):
    """{"variants", "wall_time_s", "stage_times_s"} of a sweep's results.json; the stages with
    "other_s": the wall time no stage accounts for (pruning set-up, saving models, tables)."""
    stages = dict(results["stage_times"])
    if results["wall_time_s"]:
        stages["other_s"] = results["wall_time_s"] - sum(stages.values())
    return {"variants": results["variants_total"], "wall_time_s": results["wall_time_s"],
            "stage_times_s": stages}


def render(results):
    m = results.get("machine", {})
    lines = ["# tfprune benchmarks", "",
             f"Machine: {m.get('platform')}, {m.get('cpus')} CPUs, Python {m.get('python')}, "
             f"TensorFlow {m.get('tensorflow')}, tf_keras {m.get('tf_keras')}. "
             "Command: `.venv/bin/python -m benchmarks.run --output_dir=benchmarks/results`.", ""]
    if "training" in results:
        lines += ["## Training step time: pruning wrappers vs dense (target <= 1.2x)", ""]
        rows = []
        for r in results["training"]:
            for v in ("dense", "weight", "unit"):
                rows.append([f"{r['model']} ({r['dataset']}, batch {r['batch_size']})", v,
                             f"{r[v]['median_ms']:.2f}", f"{r[v]['mean_ms']:.2f}",
                             f"{r[v].get('ratio_to_dense', 1.0):.2f}x"])
        lines += table(["model", "variant", "median ms/step", "mean ms/step", "median vs dense"], rows)
    if "fine_tune" in results:
        lines += ["## Fine-tuning step time under pruning vs dense, same steps per call "
                  "(target <= 1.15x)", "",
                  "training.fit as the jobs call it; ms per step of an epoch's training "
                  "(median over the epochs after a warm-up): a whole epoch per call of the "
                  "train function (`steps_per_execution`; the channel method's calls end at the "
                  "steps its schedule fires), and one batch per call.", ""]
        rows = []
        for r in results["fine_tune"]:
            for v in ("dense", "weight", "unit", "channel"):
                whole, single = r["whole_epoch"][v], r["per_batch"][v]
                rows.append([f"{r['model']} ({r['dataset']}, batch {r['batch_size']}, "
                             f"{r['steps']} steps/epoch)", v, f"{whole['median_ms']:.2f}",
                             f"{whole['ratio_to_dense']:.2f}x", f"{single['median_ms']:.2f}",
                             f"{single['ratio_to_dense']:.2f}x",
                             f"{single['median_ms'] / whole['median_ms']:.2f}x"])
        lines += table(["model", "variant", "epoch per call ms/step", "vs dense",
                         "batch per call ms/step", "vs dense", "batch / epoch per call"], rows)
    if "deployment" in results:
        lines += ["## TFLite latency and size (digits cnn)", "",
                  "Latency: median (p90) of single-image invocations after warm-up. Ratios are to "
                  "dense float32 on the same thread count; the FLOPs ratio (non-zero FLOPs / dense "
                  "FLOPs) is the limit structured pruning can reach. Size limit: non-zero weights x "
                  "bits per weight (sparse limit: plus a 16-bit index per non-zero).", ""]
        rows = []
        for r in results["deployment"]:
            rows.append([r["model"], r["quantization"] + (" sparse" if r["sparse_encoding"] else ""),
                         f"{100 * r['accuracy']:.2f}",
                         f"{r['latency_us_median_1t']:.2f} ({r['latency_us_p90_1t']:.2f})",
                         f"{r['latency_us_median_2t']:.2f} ({r['latency_us_p90_2t']:.2f})",
                         f"{r['latency_ratio_1t']:.2f} / {r['latency_ratio_2t']:.2f}",
                         f"{r['flops_ratio']:.2f}", f"{r['size_bytes']:,}", f"{r['gzip_bytes']:,}",
                         f"{r['limit_bytes']:,}", f"{r['gzip_compression_vs_dense_float32']:.1f}x",
                         r["delegate"]])
        lines += table(["model", "variant", "acc %", "1 thread us", "2 threads us",
                         "latency ratio 1t / 2t", "FLOPs ratio", "bytes", "gzip bytes",
                         "limit bytes", "dense f32 / gzip", "delegate"], rows)
    if "tfmot" in results:
        lines += ["## tfprune's recipe vs the tfmot tutorial's, 90% sparsity, same baseline", ""]
        rows = [[r["recipe"], r["epochs"], f"{100 * r['accuracy']:.2f}",
                 f"{r['achieved_sparsity']:.3f}", r["pruning_events"],
                 f"{r['fine_tune_time_s']:.1f}"] for r in results["tfmot"]]
        lines += table(["recipe", "epochs", "test acc %", "achieved sparsity", "pruning events",
                         "wall s"], rows)
    if "sweep" in results:
        runs = results["sweep"]["runs"]
        stages = list(dict.fromkeys(k for r in runs.values() for k in r["stage_times_s"]))
        lines += ["## `make demo` sweep wall time", "",
                  "Seconds; stages summed over variants (other: what no stage accounts for: "
                  "pruning set-up, saving models, tables and plots; negative when stages ran "
                  "at the same time, as conversions beside fine-tuning do).", ""]
        rows = [[label, r["variants"], f"{r['wall_time_s']:.0f}"]
                + [f"{r['stage_times_s'][k]:.1f}" if k in r["stage_times_s"] else ""
                   for k in stages] for label, r in runs.items()]
        lines += table(["run", "variants", "wall"] + [k[:-2].replace("_", " ") for k in stages],
                        rows)
    if "memory" in results:
        mem = results["memory"]
        lines += ["## Peak memory", ""]
        lines += ["Training: peak RSS during fit (the high-water mark is reset after TensorFlow "
                  "is imported and the model built), and its growth over the RSS before fit.", ""]
        rows = [[k] + [f"{v[x]['peak_rss_mb']:.0f} (+{v[x]['growth_mb']:.0f})"
                       for x in ("dense", "weight", "unit")]
                for k, v in mem["training_peak_rss_mb"].items()]
        lines += table(["training peak RSS MB (growth)", "dense", "weight wrapper",
                         "unit wrapper"], rows)
        rows = [[k, f"{v['file_kb']:.1f}", f"{v['interpreter_rss_mb']:.2f}", v["delegate"]]
                for k, v in mem["interpreter"].items()]
        lines += table([".tflite", "file KB", "interpreter RSS growth MB", "delegate"], rows)
    return "\n".join(lines)
