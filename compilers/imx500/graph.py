"""Graph surgery for the IMX500 package (runs in the MCT child, with plain Keras 2.15).

On the sensor the input tensor is the camera's RGB image, cropped to the inference ROI; the host
cannot add channels. So a face-grid model is quantized as a graph whose inputs are the image and
the grid ramps, joined by pad + add (the same function as the concatenation, and what imxconv-tf
takes with a constant operand); for the package the ramp input is then replaced by the constant
ramps of one face grid (``freeze_inputs``). A greyscale model gets its RGB-to-grey conversion
inside the network (a fixed 1x1 convolution with the luma weights training uses), so the sensor
feeds it the colour image it always gives; so does a one-channel image input of any other model
calibrated on photos (GREY_PHOTO).
"""
import dataclasses

# tf.image.rgb_to_grayscale's weights, which the training crops of a grey recipe go through.
LUMA = (0.2989, 0.5870, 0.1140)
GREY_RECIPES = {"face_grid_grey": "face_grid_rgb"}  # grey recipe -> the RGB recipe the sensor feeds
GREY_PHOTO = "grey photo"  # the child's mark on a one-channel image input of a file calibrated on photos


@dataclasses.dataclass(frozen=True)
class Spec:
    """One model input as the child sees it: name, recipe (None for a model from outside the
    zoo) and shape without the batch."""
    name: str
    recipe: object
    shape: tuple


def grid_channels(spec):
    """How many coordinate channels ride along with the image of ``spec`` (0 for a plain input)."""
    from zoo.data import recipes as inputs
    if spec.recipe not in inputs.IMAGE_RECIPES:
        return 0
    return inputs.INPUT_CHANNELS[spec.recipe] - inputs.IMAGE_RECIPES[spec.recipe][1]


def grid_name(spec):
    return f"{spec.name}_grid"


def sensor_spec(spec):
    """The spec the package is calibrated and evaluated on: a grey input's RGB twin (the sensor
    gives colour), else ``spec`` itself."""
    height, width, channels = spec.shape if len(spec.shape) == 3 else (None, None, None)
    if spec.recipe == GREY_PHOTO:
        return Spec(spec.name, None, (height, width, 3))
    if spec.recipe not in GREY_RECIPES:
        return spec
    return Spec(spec.name, GREY_RECIPES[spec.recipe], (height, width, channels + 2))


def _rgb_to_grey(image, name):
    import numpy as np
    import tensorflow as tf
    layer = tf.keras.layers.Conv2D(1, 1, use_bias=False, name=f"{name}_rgb_to_grey")
    grey = layer(image)
    layer.set_weights([np.asarray(LUMA, np.float32).reshape(1, 1, 3, 1)])
    return grey


def deployment_graph(model, specs):
    """The float ``model`` with each face-grid input split into image and ramps (pad + add) and
    each grey input fed RGB through the in-network luma conversion; inputs in ``split_inputs``
    order."""
    import tensorflow as tf
    if not any(grid_channels(spec) or spec.recipe == GREY_PHOTO for spec in specs):
        return model  # nothing to split or convert: MCT gets the model itself, not nested in another
    new_inputs, joined = [], []
    for spec in specs:
        extra = grid_channels(spec)
        if spec.recipe == GREY_PHOTO:
            new_inputs.append(tf.keras.Input(sensor_spec(spec).shape, name=spec.name))
            joined.append(_rgb_to_grey(new_inputs[-1], spec.name))
            continue
        if not extra:
            tensor = tf.keras.Input(spec.shape, name=spec.name)
            new_inputs.append(tensor)
            joined.append(tensor)
            continue
        height, width, channels = spec.shape
        colour = sensor_spec(spec).shape[2] - extra
        image = tf.keras.Input((height, width, colour), name=spec.name)
        grid = tf.keras.Input((height, width, extra), name=grid_name(spec))
        new_inputs += [image, grid]
        pixels = _rgb_to_grey(image, spec.name) if colour != channels - extra else image
        joined.append(tf.keras.layers.Add(name=f"{spec.name}_with_grid")([
            tf.pad(pixels, [[0, 0], [0, 0], [0, 0], [0, extra]]),
            tf.pad(grid, [[0, 0], [0, 0], [0, 0], [channels - extra, 0]])]))
    return tf.keras.Model(new_inputs, model(joined if len(joined) > 1 else joined[0]), name=model.name)


def ordered(batch, specs):
    """A batch dict's arrays in spec order (a single-input batch may name its input differently)."""
    return [next(iter(batch.values()))] if len(specs) == 1 else [batch[spec.name] for spec in specs]


def split_inputs(batch, specs, grids=True):
    """A batch made for ``specs`` (sensor specs) as the deployment graph's input list (numpy
    arrays or tensors alike); ``grids=False`` leaves the ramps out: the package's inputs."""
    arrays = []
    for spec, value in zip(specs, ordered(batch, specs)):
        extra = grid_channels(spec)
        if not extra:
            arrays.append(value)
            continue
        arrays.append(value[..., :-extra])
        if grids:
            arrays.append(value[..., -extra:])
    return arrays


def freeze_inputs(model, constants):
    """``model`` with the inputs named in ``constants`` replaced by those values (batch of 1).

    Layers fed only by constants are run once, here, through the quantized model's own layers
    (so the constant carries their quantization); the add that joins a constant to the image
    becomes ``image + constant``, which imxconv-tf maps onto the chip as a constant input."""
    import tensorflow as tf
    from keras.src.engine.keras_tensor import KerasTensor
    values, new_inputs = {}, []
    for tensor in model.inputs:
        name = tensor.name.split(":")[0]
        if name in constants:
            values[id(tensor)] = tf.constant(constants[name])
        else:
            values[id(tensor)] = tf.keras.Input(tensor.shape[1:], name=name)
            new_inputs.append(values[id(tensor)])

    def mapped(structure):
        return tf.nest.map_structure(
            lambda item: values[id(item)] if isinstance(item, KerasTensor) else item, structure)

    for depth in sorted(model._nodes_by_depth, reverse=True):  # Keras 2.15's functional graph, inputs first
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            live = [isinstance(values[id(t)], KerasTensor) for t in node.keras_inputs]
            if all(live) or not any(live):
                outputs = node.layer(*mapped(node.call_args), **mapped(node.call_kwargs))
            elif isinstance(node.layer, tf.keras.layers.Add) and len(live) == 2:
                first, second = mapped(node.call_args)[0]
                outputs = first + second
            else:
                raise ValueError(f"cannot fold a constant into layer {node.layer.name} "
                                 f"({type(node.layer).__name__})")
            for old, new in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outputs)):
                values[id(old)] = new
    outputs = [values[id(t)] for t in model.outputs]
    return tf.keras.Model(new_inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)
