"""MCT for the IMX500 (in the child process): post-training quantization, GPTQ or QAT with the
IMX500 target platform capabilities, and a 16-bit output by MCT's manual bit-width selection
where it is asked for and the TPC allows it (for a regression output whose 8-bit step is coarse:
a gaze model's 1/128 of its 30 cm scale is 0.23 cm). The 8-bit model is always made as well, so
the report can compare both and the package can fall back to it."""

OUTPUT_BITS = (8, 16)


def _say(message):
    print(f"[imx500] {message}", flush=True)


def output_layers(model):
    """The names of the layers that make ``model``'s outputs (MCT's nodes carry them)."""
    return [tensor.node.layer.name for tensor in model.outputs]


def _core_config(layers, bits):
    """MCT's CoreConfig with the activations of ``layers`` at ``bits`` (the default: None)."""
    import model_compression_toolkit as mct
    from model_compression_toolkit.core.common.network_editors import NodeNameFilter
    if bits == 8:
        return mct.core.CoreConfig()
    config = mct.core.BitWidthConfig()
    config.set_manual_activation_bit_width([NodeNameFilter(name) for name in layers], bits)
    return mct.core.CoreConfig(bit_width_config=config)


def quantize(graph, source, job, layers=(), bits=8):
    """The MCT-quantized deployment graph by the job's method, with the IMX500 TPC; ``layers`` at
    ``bits`` activations."""
    import model_compression_toolkit as mct
    from edgemdt_tpc import get_target_platform_capabilities
    tpc = get_target_platform_capabilities(tpc_version=job["tpc_version"], device_type="imx500")
    representative, core = source.calibration_batches, _core_config(layers, bits)
    _say(f"MCT {job['method']} with the IMX500 TPC v{job['tpc_version']}, {bits}-bit output, calibrating on "
         f"{source.calibration_count} inputs ({source.describe()})")
    if job["method"] == "ptq":
        quantized, _ = mct.ptq.keras_post_training_quantization(
            graph, representative, core_config=core, target_platform_capabilities=tpc)
    elif job["method"] == "gptq":
        # Without the Hessian-based weighting: on a CPU it costs ~5 s per sample and layer pass.
        config = mct.gptq.get_keras_gptq_config(n_epochs=job["epochs"], use_hessian_based_weights=False,
                                                use_hessian_sample_attention=False)
        quantized, _ = mct.gptq.keras_gradient_post_training_quantization(
            graph, representative, gptq_config=config, core_config=core, target_platform_capabilities=tpc)
    else:
        quantized = _quantization_aware_training(graph, source, core, tpc, job)
    return quantized


def _quantization_aware_training(graph, source, core, tpc, job):
    """MCT QAT: a PTQ start, --epochs of fine-tuning on the training split (Adam 1e-4, the rate
    `zoo build --qat` fine-tunes at), then the trainable quantizers frozen into inferable ones."""
    import model_compression_toolkit as mct
    import tensorflow as tf
    trainable, _, _ = mct.qat.keras_quantization_aware_training_init_experimental(
        graph, source.calibration_batches, core_config=core, target_platform_capabilities=tpc)
    trainable.compile(optimizer=tf.keras.optimizers.Adam(1e-4), loss="mse")
    trainable.fit(source.training_batches(), epochs=job["epochs"], verbose=2)
    return mct.qat.keras_quantization_aware_training_finalize_experimental(trainable)


def variants(graph, model, source, job):
    """({bits: quantized deployment graph}, a note when a 16-bit output was asked and refused).
    8 bits always; 16 for the output layers of ``model`` when job["output_bits"] is 16."""
    quantized = {8: quantize(graph, source, job)}
    if job["output_bits"] != 16:
        return quantized, None
    layers = output_layers(model)
    try:
        quantized[16] = quantize(graph, source, job, layers, 16)
    except Exception as error:  # MCT's Logger.critical raises a bare Exception for a refused bit width
        return quantized, f"kept 8 bits: MCT refused 16-bit activations for {', '.join(layers)} ({error})"
    return quantized, None
