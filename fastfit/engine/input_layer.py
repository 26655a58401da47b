"""`InputLayer` and `Input`: where a graph starts."""
from fastfit import backend
from fastfit.engine.base_layer import Layer, SymbolicTensor, _normalise_shape


class InputLayer(Layer):
    """The entry point of a model: produces the symbolic input tensor.

    Arguments: `input_shape` (without the batch axis) or `batch_input_shape`/`batch_shape`, `batch_size`,
    `dtype`, `name`, `sparse` (must be False).
    """

    _FLOAT_DTYPES_ONLY = False  # the data is converted to the model's float dtype

    def __init__(self, input_shape=None, batch_size=None, batch_input_shape=None, dtype=None, sparse=False,
                 name=None, batch_shape=None, ragged=False, **kwargs):
        if sparse or ragged:
            raise ValueError("InputLayer: sparse and ragged inputs are not supported")
        if batch_shape is not None and batch_input_shape is None:
            batch_input_shape = batch_shape
        if input_shape is None and batch_input_shape is None:
            raise ValueError("InputLayer: give `input_shape` (e.g. (784,)) or `batch_input_shape`")
        super().__init__(name=name or backend.unique_name("input"), input_shape=input_shape, batch_size=batch_size,
                         batch_input_shape=batch_input_shape, dtype=dtype, **kwargs)
        self.built = True
        tensor = SymbolicTensor(self.batch_input_shape, self.dtype, self, None)
        self._nodes.append((None, tensor))

    @property
    def input(self):
        return self.output

    @property
    def input_shape(self):
        return self.batch_input_shape

    def get_config(self):
        return {"batch_input_shape": list(self.batch_input_shape), "dtype": self.dtype, "sparse": False,
                "ragged": False, "name": self.name}


def Input(shape=None, batch_shape=None, name=None, dtype=None, sparse=False, tensor=None, batch_size=None,
          **kwargs):
    """Create a symbolic input tensor for the functional API: `x = Input(shape=(784,))`.

    Raises:
        ValueError: neither `shape` nor `batch_shape` given, or a non-positive size.
    """
    if tensor is not None:
        raise ValueError("Input: the `tensor` argument is not supported")
    if shape is None and batch_shape is None:
        raise ValueError("Input: give `shape` (without the batch axis), e.g. Input(shape=(784,))")
    if shape is not None and not isinstance(shape, (tuple, list)):
        shape = (shape,)
    if shape is not None:
        _normalise_shape(shape, "shape", name or "input")
    layer = InputLayer(input_shape=shape, batch_input_shape=batch_shape, batch_size=batch_size, name=name,
                       dtype=dtype, sparse=sparse, **kwargs)  # kwargs: the legacy `input_dtype`
    return layer.output
