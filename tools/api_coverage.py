"""Generate ``docs/api-coverage.md``: every public name of MindSpore 2.10's main modules, and sporax's status.

Usage (from the repository root)::

    python tools/api_coverage.py --write    # regenerate docs/api-coverage.md from the current sporax
    python tools/api_coverage.py --check    # exit 1 if the committed table is out of date

Inputs:

- ``tools/data/mindspore_public_names.json``: the reference list, written by
  ``tools/ms_public_names.py`` with a real MindSpore 2.10 (``__all__`` of each module);
- the current sporax: a MindSpore module ``mindspore.X`` is looked up as
  ``sporax.compat``'s alias target, and a name is "in sporax" when that module has it;
- ``RULES`` below: for each name sporax lacks, the first matching rule says whether it is
  *planned* or *out of scope*, and why.

``tests/test_api_coverage.py`` fails when the committed table and the code disagree (a name
added or removed since the table was generated): regenerate with ``--write`` and commit.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tools", "data", "mindspore_public_names.json")
TABLE = os.path.join(ROOT, "docs", "api-coverage.md")

PLANNED, OUT = "planned", "out of scope"

# Reasons, shared by many rules.
_ASCEND = ("a fused kernel of MindSpore's Ascend backend; XLA fuses the equivalent jax.numpy code itself")
_SPARSE = ("MindSpore's sparse tensor types (COO/CSR/RowTensor) and their ops; sporax tensors are dense "
           "(JAX's sparse support is experimental)")
_COMPILER = ("a building block of MindSpore's graph compiler (its Python-syntax parser); sporax traces Python "
             "with JAX instead, so user code never needs it")
_MODULE = "a submodule object, not an API name; its public members are listed where MindSpore re-exports them"
_SUMMARY = ("MindInsight summaries, dumps and profiling files; sporax does not produce them (use jax.profiler or "
            "your own logger, e.g. through a LambdaCallback)")
_CUSTOM = ("custom kernel registration for MindSpore's backends (AKG/TBE/AICPU/CPU/GPU); write a jax function "
           "(or a Pallas kernel) instead")
_RUNTIME = ("device memory, stream and kernel-launch management of MindSpore's runtime; JAX/XLA manage device "
            "memory and streams")
_MINDIR = "MindSpore's MindIR graph format; sporax exports STABLEHLO (see sporax.export)"
_THOR = "the THOR second-order optimizer and its layer conversions, tied to MindSpore's Ascend kernels"
_PIPELINE = "pipeline-parallel stage splitting and micro-batching, not among sporax's parallel modes"
_FAULT = "MindSpore's fault tolerance / MindIO services (Huawei cluster software)"
_REWRITE = "mindspore.rewrite (source rewriting of networks by symbol trees)"
_ASCEND_DTYPE = "an Ascend-only dtype with no JAX/XLA counterpart"
_PS_INTERNAL = "an internal primitive of MindSpore's parameter-server/embedding cache; sporax.ps implements PS mode on Ray"
_MINDRECORD = "MindSpore's MindRecord/TFRecord/cache-server formats of its C++ data engine; sporax.dataset reads numpy/image sources through Grain"

# (module regex, name regex, status, reason): the first match decides. Module regexes are anchored.
RULES: list[tuple[str, str, str, str]] = [
    (r".*", r"^(SparseApply\w*|FusedSparse\w*)$", PLANNED,
     "sparse-row (indexed) optimizer primitives of the Apply* family (issue 12 item 1)"),
    # ---- out of scope
    (r".*", r"^(NPU|Fused)\w*", OUT, _ASCEND),
    (r".*", r"^(Akg|AiCPU|Aicpu|TBE|Cpu|Gpu)\w*|\w*RegOp$", OUT, _CUSTOM),
    (r".*", r"^(Custom|CustomOpBuilder|op_info_register|custom_info_register|kernel|ms_kernel|PyExecute)$", OUT,
     _CUSTOM),
    (r".*", r"(flash_attention|FlashAttention|PagedAttention|ReshapeAndCache|^moe_|^nsa_|fused_infer_attention|"
            r"speed_fusion|lightning_indexer|ring_attention|rotary_position|ApplyRotaryPosEmb|GroupTopk|"
            r"multi_scale_deformable|^RmsNorm$|^rms_norm$|^add_rms_norm$|^add_layer_norm$|^swiglu$|"
            r"matmul_reduce_scatter|all_gather_matmul|sparse_flash|^incre_|^prompt_)", OUT, _ASCEND),
    (r".*", r"^(coo_|csr_|row_tensor_|make_coo|make_csr|make_row_tensor|make_sparse|dense_to_sparse)\w*|"
            r"^(COOTensor|CSRTensor|RowTensor|SparseTensor|coo2csr|csr2coo|SparseToDense|SparseTensorDenseMatmul|"
            r"SparseTensorDenseAdd|SparseSlice|sparse_segment_mean)$", OUT, _SPARSE),
    (r".*", r"^(scalar_\w+|tuple_\w+|list_\w+|dict_\w+|bool_\w+|string_\w+|augassign_\w+|env_get|environ_\w+|"
            r"ms_hasnext|ms_next|iter_converter|is_sequence_\w+|is_dynamic_sequence_\w+|hyper_add|in_dict|"
            r"not_in_dict|is_|is_not|typeof|hastype|isconstant|geswitch|switch|switch_layer|zip_operation|"
            r"get_vm_impl_fn|vm_impl_registry|tensor_operator_registry|cpp_create_prim_instance_helper|"
            r"pyboost_inner_prim|gen_extend_func|arg_handler|arg_dtype_cast|prim_arg_register|reduced_shape|"
            r"shape_mul|broadcast_gradient_args|make_dict|make_list|make_tuple|make_range|make_slice|"
            r"make_map_parameter|UpdateState|GeSwitch|Merge|merge|SliceGetItem|tensor_slice|array_reduce|"
            r"array_to_scalar|ScalarCast|ScalarToArray|ScalarToTensor|TupleToArray|TensorToTuple|Reusing|"
            r"DtypeToEnum|MoveTo|move_to|Morph|IdentityN|DynamicShape|TensorShape|SelectView|TransposeView|"
            r"TransposeExtView|CopyWithSlice|tensor_(add|sub|mul|div|muls|floordiv|mod|pow|exp|expm1|ge|gt|"
            r"le|lt|range))$", OUT, _COMPILER),
    (r".*", r"^(ScalarSummary|ImageSummary|TensorSummary|HistogramSummary|TensorDump|tensordump|DumpGradient|"
            r"Profiler|SummaryRecord|SummaryLandscape|FlopsUtilizationCollector|flops_collection|set_dump)$", OUT,
     _SUMMARY),
    (r".*", r"^(Push|Pull|MapCacheIdx|MapUniform|TCPStore|ComputeAccidentalHits)$", OUT, _PS_INTERNAL),
    (r"mindspore", r"^(memory_\w+|max_memory_\w+|reset_max_memory_\w+|reset_peak_memory_stats|empty_cache|Stream|"
                   r"StreamCtx|current_stream|default_stream|communication_stream|synchronize|set_cur_stream|Event|"
                   r"MemPool|use_mem_pool|PluggableAllocator|ms_memory_recycle|memory_replay|set_memory|"
                   r"set_device_limit|get_device_limit|set_stream_limit|get_stream_limit|reset_stream_limit|"
                   r"StreamLimitCtx|DeviceCtx|launch_blocking|set_kernel_launch_capture|set_kernel_launch_group|"
                   r"dispatch_threads_num|set_cpu_affinity|UntypedStorage)$", OUT, _RUNTIME),
    (r"mindspore(\.train)?", r"^(load_mindir|save_mindir|export_split_mindir|obfuscate_ckpt|"
                             r"load_obf_params_into_net)$", OUT, _MINDIR + "; checkpoint obfuscation likewise"),
    (r".*", r"^(ConvertModelUtils|ConvertNetUtils|thor|DenseThor|Conv2dThor|EmbeddingThor|EmbeddingLookupThor)$",
     OUT, _THOR),
    (r".*", r"^(PipelineCell|PipelineGradReducer|MicroBatchInterleaved|GradAccumulationCell|"
            r"VirtualDatasetCellTriple|AdaSumByDeltaWeightWrapCell|AdaSumByGradWrapCell|"
            r"sync_pipeline_shared_parameters|merge_pipeline_strategys)$", OUT, _PIPELINE),
    (r".*", r"^(TrainFaultTolerance|OptTFTWrapper|mindio_preload|set_mindio_server_info|restore_group_info_list)$",
     OUT, _FAULT),
    (r"mindspore", r"^(SymbolTree|Node|NodeType|ScopedValue)$", OUT, _REWRITE),
    (r"mindspore", r"^(hifloat8|qint4x2|QuantDtype)$", OUT, _ASCEND_DTYPE),
    (r"mindspore\.dataset", r"^(MindDataset|OBSMindDataset|TFRecordDataset|DatasetCache|Schema)$", OUT, _MINDRECORD),
    (r"mindspore\.nn", r"^GetNextSingleOp$", OUT, "the device-queue op of MindSpore's dataset sink mode; sporax "
                                                   "feeds batches from Python (sink mode runs one batch per step)"),
    (r".*", r"^(AlltoAllVC|all_to_all_v_c|NeighborExchange|NeighborExchangeV2|CollectiveGather|CollectiveScatter)$",
     OUT, "an Ascend (HCCL)-specific collective; sporax's collectives are jax.lax ones"),
    # ---- planned (by family, with the issue that carries it)
    (r".*", r"^(Accuracy|BleuScore|ConfusionMatrix\w*|CosineSimilarity|Dice|F1|Fbeta|HausdorffDistance|MAE|MSE|"
            r"MeanSurfaceDistance|OcclusionSensitivity|Perplexity|Precision|ROC|Recall|RootMeanSquareDistance|"
            r"Top1CategoricalAccuracy|Top5CategoricalAccuracy|TopKCategoricalAccuracy|auc|get_metric_fn|"
            r"get_metrics|names|rearrange_inputs|Loss|Metric)$", PLANNED,
     "metrics family (issue 12 item 4: metric classes and names)"),
    (r"mindspore\.experimental\.optim", r".*", PLANNED, "mindspore.experimental.optim (issue 12 item 4)"),
    (r"mindspore\.nn", r"^(ASGD|AdaFactor|AdaMax|AdamOffload|Adadelta|Adagrad|FTRL|LARS|Lamb|LazyAdam|"
                       r"ProximalAdagrad|RMSProp|Rprop)$", PLANNED, "optimizer family (issue 12 item 4)"),
    (r"mindspore\.nn", r"\w*Loss$", PLANNED, "loss family (issue 12 item 4)"),
    (r"mindspore\.nn", r"^(DistributedGradReducer|SyncBatchNorm)$", PLANNED, "data parallel (issue 8)"),
    (r"mindspore\.nn", r"^(EmbeddingLookup|MultiFieldEmbeddingLookup)$", PLANNED,
     "embedding lookup with PS cache (issue 14)"),
    (r"mindspore\.nn", r"^(Jvp|Vjp)$", PLANNED, "forward/reverse-mode cells (issue 12 item 1)"),
    (r"mindspore\.nn", r".*Ext$", PLANNED, "the PyTorch-style '*Ext' layer variants, on the same layers"),
    (r"mindspore\.nn", r".*", PLANNED, "nn layer family: maps to jax.numpy/lax on the existing Cell machinery"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(AllGather\w*|AllReduce|AlltoAll\w*|Broadcast|ReduceScatter\w*|"
                                          r"ReduceOp|Barrier|BatchISendIRecv|Send|Receive|P2POp|Reduce|Reshard|"
                                          r"all_\w+|reduce_scatter\w*|broadcast|broadcast_object_list|barrier|"
                                          r"batch_isend_irecv|isend|irecv|send|recv|\w+_object_list|"
                                          r"gather_into_tensor|gather_object|scatter_tensor|scatter_object_list|"
                                          r"init_process_group|destroy_process_group|new_group|get_backend|"
                                          r"get_global_rank|get_group_rank|get_process_group_ranks|get_rank|"
                                          r"get_world_size|is_available|is_initialized|reshard|"
                                          r"set_comm_ops_inplace|distribute)$", PLANNED,
     "collective communication ops (issue 8: data parallel)"),
    # ---- ops.operations: what is left after the families of issue 12 item 4, by sub-family
    (r"mindspore(\.ops(\.operations)?)?", r"^(FloatStatus)$", OUT,
     "Ascend/GPU overflow-status register op; sporax's loss scaling checks finiteness with amp.all_finite"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(GetNext)$", OUT,
     "the device-queue op of MindSpore's dataset sink mode; sporax feeds batches from Python"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(Coalesce)$", OUT, _SPARSE),
    (r"mindspore(\.ops(\.operations)?)?", r"^(DropoutGenMask|DropoutDoMask)$", PLANNED,
     "MindSpore's two-step dropout (mask bits, then apply) of its 1.x graphs; ops.Dropout covers the use"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(BesselK0|BesselK0e|BesselK1|BesselK1e|BesselY0|BesselY1)$", PLANNED,
     "Bessel K/Y functions: jax.scipy.special has no implementation, so they need their own series (J0/J1 "
     "use Bessel's integral)"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(AdjustHue|AdjustSaturation|HSVToRGB|RGBToHSV|CropAndResize|ResizeArea|"
                                          r"ResizeBicubic|ResizeLinear1D|ResizeNearestNeighborV2|ScaleAndTranslate|"
                                          r"ExtractGlimpse|SampleDistortedBoundingBoxV2|AffineGrid|GridSampler2D|"
                                          r"GridSampler3D|UpsampleNearest3D|UpsampleTrilinear3D|ROIAlign|"
                                          r"ExtractImagePatches|ExtractVolumePatches|Im2Col|Col2Im|Dilation2D|"
                                          r"DeformableOffsets)$", PLANNED,
     "image and patch ops (on jax.image and lax.conv_general_dilated_patches); resize nearest/bilinear are done"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(BoundingBoxDecode|BoundingBoxEncode|CheckValid|NMSWithMask|"
                                          r"NonMaxSuppressionV3|NonMaxSuppressionWithOverlaps|"
                                          r"CombinedNonMaxSuppression)$", PLANNED,
     "detection box ops (IOU is done); NMS needs a fixed-size output formulation under jit"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(BasicLSTMCell|DynamicGRUV2|DynamicRNN|LSTM)$", PLANNED,
     "fused RNN kernels: with nn.LSTM/GRU on lax.scan (nn layer family)"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(CTCLoss|CTCLossV2|CTCGreedyDecoder|RNNTLoss|EditDistance|"
                                          r"NoRepeatNGram)$", PLANNED, "sequence losses and decoders (optax.ctc_loss "
                                                                      "has the CTC math)"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(ForiLoop|WhileLoop|Scan|Partial|HookBackward|InsertGradientOf|"
                                          r"Assert|CheckNumerics|PyFunc)$", PLANNED,
     "graph control-flow and hook primitives: lax.fori_loop/while_loop/scan, jax.custom_vjp, "
     "jax.debug/checkify, jax.pure_callback"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(Eig|Geqrf|Lstsq|LuSolve|LuUnpack|MatrixDiagPartV3|MatrixDiagV3|"
                                          r"MatrixSetDiagV3|MatrixLogarithm|MatrixSolveLs|NuclearNorm|Orgqr|"
                                          r"Ormqr)$", PLANNED,
     "linear algebra family, rest (jax.numpy.linalg / jax.lax.linalg); Cholesky, Qr, Svd, solves and inverses "
     "are done"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(LogUniformCandidateSampler|UniformCandidateSampler|"
                                          r"MultinomialWithReplacement|NonDeterministicInts|RandpermV2)$", PLANNED,
     "random family, rest (samplers), on sporax's one run-time key"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(AdaptiveMaxPool3D|FractionalAvgPool|"
                                          r"FractionalMaxPool\w*|MaxPool3DWithArgmax|MaxUnpool2D|MaxUnpool3D)$",
     PLANNED, "pooling family, rest (2-D/3-D max/avg, adaptive 2-D and argmax pooling are done)"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(DepthwiseConv2dNative)$", PLANNED,
     "deprecated in MindSpore 2.10 (its CPU kernel accepts only weight batch 1); nn.Conv2d(group=C) covers it"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(AdamNoUpdateParam|ApplyAdagradDA|ApplyAdamWithAmsgradV2|"
                                          r"ApplyKerasMomentum|SGD)$", PLANNED,
     "Apply* optimizer primitive family, rest (issue 12 item 1)"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(BatchToSpace|BatchToSpaceNDV2|SpaceToBatch|DataFormatDimMap|"
                                          r"DataFormatVecPermute|IndexPut|InplaceIndexAdd|LerpScalar|LogSoftmaxExt|"
                                          r"RaggedRange|SubAndFilter|UniqueWithPad|CompareAndBitpack|identity)$",
     PLANNED, "array family, rest: older or rarely used variants of ops that are done (SpaceToBatchND, "
              "IndexAdd, Lerp, LogSoftmax, Unique)"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(FFTWithSize|STFT)$", PLANNED, "FFT family (jax.numpy.fft)"),
    (r"mindspore(\.ops(\.operations)?)?", r"^(TripletMarginLoss|EmbeddingLookup)$", PLANNED,
     "loss family rest / embedding lookup with PS cache (issue 14)"),
    (r"mindspore\.ops(\.operations)?", r"^[A-Z]", PLANNED,
     "operator class family (issue 12 item 1): a Primitive over the functional op / jax.numpy"),
    (r"mindspore\.ops", r".*", PLANNED, "functional op family (issue 12 item 1): maps to jax.numpy/lax"),
    (r"mindspore\.ops\.operations", r".*", PLANNED, "operator family (issue 12 item 1)"),
    (r"mindspore\.dataset", r".*", PLANNED, "more mindspore.dataset sources and tools (issue 10 family, on Grain)"),
    (r"mindspore\.communication", r".*", PLANNED, "communication management (issue 8)"),
    (r"mindspore(\.train)?", r"^(ckpt_to_safetensors|safetensors_to_ckpt|unified_safetensors|load_checkpoint_async|"
                             r"load_segmented_checkpoints|get_ckpt_path_with_strategy|async_ckpt_thread_status|"
                             r"parameter_broadcast)$", PLANNED, "checkpoint family (converted and segmented checkpoints)"),
    (r"mindspore(\.train)?", r"^(DatasetHelper|connect_network_with_dataset|data_sink)$", PLANNED,
     "dataset sink helpers (issue 10)"),
    (r"mindspore(\.train)?", r"^(BackupAndRestore|LearningRateScheduler|OnRequestExit)$", PLANNED,
     "training callbacks (issue 12 item 3 family)"),
    (r"mindspore", r"^(byte|cdouble|cfloat|intc|intp|long|short|single|ubyte|uintc|uintp|ushort|float8_e4m3fn|"
                   r"float8_e5m2|Int|TensorType|tensor_type|number|string|list_|tuple_|type_none|"
                   r"dtype_to_pytype)$", PLANNED, "dtype names and aliases (ml_dtypes has the float8 types)"),
    (r"mindspore", r".*", PLANNED, "top-level API (seeding, jit options, tensor helpers, devices)"),
    (r".*", r".*", PLANNED, "not yet implemented"),
]

_COMPILED = [(re.compile(m + r"\Z"), re.compile(n), s, r) for m, n, s, r in RULES]


def classify(module: str, name: str, kind: str) -> tuple[str, str]:
    """(status, reason) for a name sporax lacks."""
    if kind == "module":
        return OUT, _MODULE
    for mod_re, name_re, status, reason in _COMPILED:
        if mod_re.match(module) and name_re.search(name):
            return status, reason
    return PLANNED, "not yet implemented"


def reference() -> tuple[str, dict]:
    with open(DATA) as f:
        data = json.load(f)
    return data["version"], data["modules"]


def sporax_module(ms_module: str):
    """The sporax module that ``import <ms_module>`` gives under sporax.compat, or None."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from sporax import compat

    try:
        return importlib.import_module(compat._target(ms_module))
    except ImportError:
        return None


def presence() -> dict:
    """``{module: {name: bool}}``: whether sporax has each reference name now."""
    _, modules = reference()
    out = {}
    for module, names in modules.items():
        mod = sporax_module(module)
        out[module] = {n: mod is not None and hasattr(mod, n) for n in names}
    return out


def render() -> str:
    version, modules = reference()
    have = presence()
    lines = [
        f"# API coverage: MindSpore {version} public names in sporax",
        "",
        "Generated by `python tools/api_coverage.py --write`; do not edit by hand. The names are the `__all__`",
        f"of each module of a real MindSpore {version} (`tools/data/mindspore_public_names.json`, listed by",
        "`tools/ms_public_names.py`); \"sporax\" says whether `import mindspore...` under `sporax.compat` has the",
        "name; for each missing name, the status is *planned* or *out of scope*, with the reason (rules in",
        "`tools/api_coverage.py`). `tests/test_api_coverage.py` fails when this table and the code disagree.",
        "",
        "## Summary",
        "",
        "| module | public names | in sporax | planned | out of scope |",
        "|---|---:|---:|---:|---:|",
    ]
    sections = []
    totals = [0, 0, 0, 0]
    for module, names in modules.items():
        rows = []
        counts = [len(names), 0, 0, 0]
        for name, kind in names.items():
            if have[module][name]:
                counts[1] += 1
                rows.append(f"| `{name}` | {kind} | yes | | |")
            else:
                status, reason = classify(module, name, kind)
                counts[2 if status == PLANNED else 3] += 1
                rows.append(f"| `{name}` | {kind} | no | {status} | {reason} |")
        totals = [a + b for a, b in zip(totals, counts)]
        lines.append(f"| `{module}` | {counts[0]} | {counts[1]} | {counts[2]} | {counts[3]} |")
        sections += ["", f"## `{module}`", "", "| name | kind | sporax | status | reason |", "|---|---|---|---|---|",
                     *rows]
    lines.append(f"| all | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} |")
    return "\n".join(lines + sections) + "\n"


_ROW = re.compile(r"^\| `([^`]+)` \| (\w+) \| (yes|no) \|")
_SECTION = re.compile(r"^## `([^`]+)`$")


def parse_table(text: str) -> dict:
    """``{module: {name: bool}}`` as the committed table states it."""
    out: dict = {}
    module = None
    for line in text.splitlines():
        m = _SECTION.match(line)
        if m:
            module = m.group(1)
            out[module] = {}
            continue
        m = _ROW.match(line)
        if m and module is not None:
            out[module][m.group(1)] = m.group(3) == "yes"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Generate or check docs/api-coverage.md.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="regenerate docs/api-coverage.md")
    group.add_argument("--check", action="store_true", help="exit 1 if docs/api-coverage.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        os.makedirs(os.path.dirname(TABLE), exist_ok=True)
        with open(TABLE, "w") as f:
            f.write(text)
        print(f"wrote {os.path.relpath(TABLE, ROOT)}")
        return 0
    current = open(TABLE).read() if os.path.exists(TABLE) else ""
    if current != text:
        print("docs/api-coverage.md is out of date: run python tools/api_coverage.py --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
