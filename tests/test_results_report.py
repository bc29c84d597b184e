from tfprune.results import report


def entry(method, quantization, accuracy, target=None, achieved=0.0, schedule="-", gzip=1000.0,
          latency=0.01):
    return dict(method=method, schedule=schedule, target_sparsity=target, quantization=quantization,
                tflite_accuracy=accuracy, achieved_sparsity=achieved, size_bytes=4 * gzip,
                gzip_bytes=gzip, latency_ms_median=latency, seeds=1)


def test_reference_is_named_for_what_was_measured():
    entries = [entry("dense", "int8", 0.98), entry("weight", "int8", 0.98, 0.9, 0.9, "constant", 300)]
    text = "\n".join(report.summary_lines(entries))
    assert "Reference, the dense int8 model" in text and "below dense int8 raw" in text
    assert "float32" not in text
    with_float = [entry("dense", "float32", 0.98, gzip=4000)] + entries
    assert report.reference_entry(with_float)["quantization"] == "float32"


def test_methods_that_choose_their_sparsity_are_ranked_by_what_they_achieved():
    entries = [entry("dense", "float32", 0.98),
               entry("dynamic", "float32", 0.985, None, 0.41),
               entry("weight", "float32", 0.98, 0.9, 0.9, "constant")]
    lines = report.summary_lines(entries)
    assert any("dynamic pruning holds accuracy (within 1 point) up to achieved sparsity 0.41" in l
               for l in lines), lines
    assert any("weight pruning holds accuracy (within 1 point) up to sparsity 0.90" in l for l in lines)
    assert not any("dynamic pruning holds accuracy (within 1 point) up to sparsity" in l
                   for l in lines)  # what the report said before: "up to sparsity 0"


def test_untimed_entries_do_not_break_the_summary():
    entries = [entry("dense", "float32", 0.98, latency=None), entry("unit", "float32", 0.98, 0.5,
                                                                     0.5, "constant", latency=None)]
    text = "\n".join(report.summary_lines(entries))
    assert "latency not measured yet" in text and "Fastest" not in text


def test_decision_lines_show_what_each_pruner_chose():
    rows = [dict(seed=0, method="dynamic", target_sparsity=None, achieved_sparsity=0.25,
                 pruning_events=3, rollbacks=1, chosen_sparsity={"fc1": 0.25, "fc2": 0.125},
                 quantization=q) for q in ("float32", "int8")]
    rows.append(dict(seed=0, method="weight", target_sparsity=0.5, pruning_events=None))
    assert report.decision_lines(rows) == [
        "- seed 0 dynamic (chose its sparsity): 3 pruning events, 1 rollbacks; achieved 0.250; "
        "per layer: fc1 0.25, fc2 0.12."]


def test_layer_wise_table_names_the_winner_and_mixed_is_flagged_where_it_loses():
    def wise(layers, quantization, accuracy, size, **extra):
        return dict(entry("weight", quantization, accuracy, 0.9, 0.9, "constant", size / 3),
                    layer_sparsity=layers, size_bytes=size, nonzero_params=1234, **extra)

    entries = [wise("uniform", "float32", 0.90, 4000), wise("auto", "float32", 0.92, 4000),
               wise("global", "float32", 0.89, 4000)]
    lines = report.layer_sparsity_lines(entries)
    assert lines[-1] == ("| weight | constant | 0.9 | 90.00% (0.900; 1,234 nz) | 92.00% (0.900; "
                         "1,234 nz) | 89.00% (0.900; 1,234 nz) | auto (+2.00 vs uniform) |")
    quantized = [wise("auto", "dynamic", 0.92, 1000), wise("auto", "int4", 0.91, 500),
                 wise("auto", "mixed", 0.90, 700, int4_fraction=0.6, int4_layers=["fc1"]),
                 wise("uniform", "dynamic", 0.91, 1000), wise("uniform", "int4", 0.88, 500)]
    mixed = report.mixed_lines(quantized)
    assert len(mixed) == 1 and "int4 layers (60% of the weights): fc1" in mixed[0]
    assert "**NOT more accurate than all-int4.**" in mixed[0]
    assert report.hybrid_lines(quantized) == [
        "- weight constant 0.9: hybrid 90.00% at 0.2 KB gzip; uniform dynamic 91.00% at 0.3 KB "
        "gzip; uniform int4 88.00% at 0.2 KB gzip."]
    assert report.layer_sparsity_lines(entries[:1]) == []  # nothing to compare


def test_layer_sparsity_plot_greys_only_untouched_layers():
    from tfprune.results import plots
    rows = [{"layer": "conv", "units": 8, "units_after_shrink": 4, "pruned": True},
            {"layer": "depthwise", "units": 8, "units_after_shrink": 4, "pruned": False},
            {"layer": "head", "units": 10, "units_after_shrink": 10, "pruned": False}]
    assert plots.touched_layers(rows, structured=True) == [True, True, False]
    # For weight pruning, shrink does not remove units: only the chosen layers are touched.
    assert plots.touched_layers(rows, structured=False) == [True, False, False]


def test_stage_lines_say_how_much_of_the_ptq_loss_each_stage_recovers():
    def staged(stage, quantization, accuracy, method="weight", gzip=1000.0):
        return dict(entry(method, quantization, accuracy, 0.8, 0.8, "constant", gzip),
                    layer_sparsity="uniform", target_latency=None, stage=stage,
                    kernel_nonzeros=200, max_unique=16 if stage == "pcqat" else None)

    entries = [staged(None, "float32", 0.90, gzip=4000), staged(None, "int8", 0.88),
               staged("pqat", "int8", 0.895), staged("pcqat", "int8", 0.884, gzip=600)]
    text = "\n".join(report.stage_lines(entries))
    assert "**weight constant 0.8**" in text
    assert "| PTQ float32 | 90.00 |" in text and "| pcqat int8 | 88.40 | 2.3 | 0.6 | 200 | 16 |" \
        " +0.40 points |" in text
    assert "int8 PTQ loses 2.00 points against float32; pqat int8 recovers +1.50 (75% of the " \
           "loss)." in text
    assert "pcqat int8 recovers +0.40 (20% of the loss): **less than half**." in text
    # a pqat row comes before pcqat: the stages' registered order
    assert text.index("| pqat int8") < text.index("| pcqat int8")
    fine = [staged(None, "float32", 0.90), staged(None, "int8", 0.901), staged("pqat", "int8", 0.9)]
    assert "int8 PTQ loses nothing (+0.10 points) against float32" in \
        "\n".join(report.stage_lines(fine))
    assert report.stage_lines(entries[:2]) == []  # no stage: no section
