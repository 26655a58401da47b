"""What fastfit cannot carry out raises a clear error at add, compile or fit; neutral Keras values are accepted.

One test per item of the audit (docs/guide/migrating-from-keras.md lists them for users).
"""
import numpy as np
import pytest

import fastfit
from fastfit import optimizers
from fastfit.callbacks import ModelCheckpoint
from fastfit.layers import Dense, Flatten, Input, Layer
from fastfit.models import Model, Sequential


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, 24)
    x = (rng.normal(0, 1, (3, 4))[labels] + rng.normal(0, 0.3, (24, 4))).astype("float32")
    return x, fastfit.utils.to_categorical(labels, 3)


def mlp(engine="python", **compile_args):
    model = Sequential([Dense(5, input_dim=4, activation="relu"), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", engine=engine, **compile_args)
    return model


# -- custom layers and models ---------------------------------------------------------------------------------
class Doubling(Layer):
    def call(self, inputs):
        return 2 * inputs


class ResizedDense(Dense):
    def build(self, input_shape):
        super().build(input_shape)


class WiderDense(Dense):
    """Only new defaults: the layer still computes what Dense computes."""

    def __init__(self, **kwargs):
        super().__init__(units=7, **kwargs)


def test_custom_layer_with_call_raises_at_add_naming_the_class():
    model = Sequential()
    with pytest.raises(ValueError) as error:
        model.add(Doubling())
    message = str(error.value)
    assert "Doubling" in message and "`call`" in message and "custom layers are not supported" in message
    assert "Dense" in message and "Dropout" in message  # the built-in layers are listed
    assert model.layers == []


def test_custom_layer_raises_after_a_shaped_first_layer_and_in_the_functional_api():
    model = Sequential([Dense(3, input_dim=4)])
    with pytest.raises(ValueError, match="Doubling"):
        model.add(Doubling())
    assert len(model.layers) == 1
    with pytest.raises(ValueError, match="Doubling"):
        Doubling()(Input(shape=(4,)))


def test_subclass_overriding_build_of_a_builtin_layer_raises():
    with pytest.raises(ValueError, match=r"ResizedDense.*`build`"):
        Sequential([ResizedDense(3, input_dim=4)])


def test_subclass_changing_only_defaults_trains_like_its_parent(data, core):
    x, y = data
    model = Sequential([WiderDense(input_dim=4), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", engine=core)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.layers[0].get_weights()[0].shape == (4, 7)


def test_the_engine_refuses_a_custom_layer_that_bypassed_add(data):
    model = mlp()
    model.layers[1].__class__ = type("Sneaky", (Dense,), {"call": lambda self, inputs: inputs})
    model._invalidate()
    with pytest.raises(ValueError, match="Sneaky"):
        model.fit(*data, epochs=1, verbose=0)


def test_subclassed_model_with_call_raises():
    class MyModel(Model):
        def __init__(self):
            super().__init__()
            self.dense = Dense(3)

        def call(self, inputs):
            return self.dense(inputs)

    with pytest.raises(ValueError, match=r"MyModel.*subclassed models are not supported"):
        MyModel()


def test_missing_keras_layers_name_themselves_and_the_builtin_ones():
    with pytest.raises(AttributeError) as error:
        getattr(fastfit.layers, "Conv2D")  # noqa: B009
    assert "Conv2D" in str(error.value) and "Dense" in str(error.value)
    with pytest.raises(AttributeError, match="function"):
        getattr(fastfit.backend, "function")  # noqa: B009


# -- compile / fit / evaluate / predict arguments ---------------------------------------------------------------
@pytest.mark.parametrize("argument, value", [("weighted_metrics", ["acc"]), ("run_eagerly", True),
                                             ("steps_per_execution", 4)])
def test_compile_refuses_values_it_would_ignore(argument, value):
    model = Sequential([Dense(3, input_dim=4, activation="softmax")])
    with pytest.raises(ValueError) as error:
        model.compile(optimizer="sgd", loss="categorical_crossentropy", **{argument: value})
    assert argument in str(error.value) and repr(value) in str(error.value)
    assert not model.compiled


def test_compile_accepts_the_neutral_values(data, core):
    model = mlp(core, weighted_metrics=[], run_eagerly=False, steps_per_execution=1, jit_compile=True)
    model.fit(*data, epochs=1, verbose=0)
    mlp(core, weighted_metrics=None, run_eagerly=None)


@pytest.mark.parametrize("argument, value", [("workers", 4), ("use_multiprocessing", True),
                                             ("max_queue_size", 20)])
def test_fit_evaluate_predict_refuse_generator_options(data, core, argument, value):
    x, y = data
    model = mlp(core)
    before = model.get_weights()
    for call in (lambda: model.fit(x, y, verbose=0, **{argument: value}),
                 lambda: model.evaluate(x, y, verbose=0, **{argument: value}),
                 lambda: model.predict(x, **{argument: value})):
        with pytest.raises(ValueError, match=argument):
            call()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.fit(x, y, verbose=0, workers=1, use_multiprocessing=False, max_queue_size=10)
    model.evaluate(x, y, verbose=0, workers=0)
    model.predict(x, workers=1)


def test_generators_and_sequences_train_and_datasets_name_what_to_pass(data):
    x, y = data
    model = mlp()

    class Batches(fastfit.utils.Sequence):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return x, y

    # generators and Sequences are taken now (tests/engine/test_generators.py); a tf.data-like dataset object
    # (recognised by class and package) still names what to pass instead
    model.fit_generator(iter([(x, y)]), steps_per_epoch=1, verbose=0)
    assert model.predict(Batches()).shape == (len(x), 3)
    DatasetV2 = type("DatasetV2", (), {"__module__": "tensorflow.python.data.ops.dataset_ops",
                                       "__iter__": lambda self: iter([(x, y)])})
    for call in (lambda: model.fit(DatasetV2(), verbose=0), lambda: model.predict(DatasetV2())):
        with pytest.raises(TypeError, match="DatasetV2.*fastfit.utils.Sequence"):
            call()


def test_batch_methods_refuse_reset_metrics_false(data):
    model = mlp()
    with pytest.raises(ValueError, match="reset_metrics"):
        model.train_on_batch(*data, reset_metrics=False)
    with pytest.raises(ValueError, match="reset_metrics"):
        model.test_on_batch(*data, reset_metrics=False)


def test_verbose_auto_means_one(data, capsys):
    model = mlp()
    model.fit(*data, epochs=1, verbose="auto")
    assert "Epoch 1/1" in capsys.readouterr().out


# -- a batch size fixed by the input ----------------------------------------------------------------------------
def test_fixed_input_batch_size_is_enforced(data, core):
    x, y = data  # 24 samples
    model = Sequential([Dense(3, batch_input_shape=(8, 4), activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", engine=core)
    with pytest.raises(ValueError, match="batch_size 6 does not match the batch size 8"):
        model.fit(x, y, batch_size=6, verbose=0)
    with pytest.raises(ValueError, match="20 samples, not a multiple of the batch size 8"):
        model.fit(x[:20], y[:20], verbose=0)
    with pytest.raises(ValueError, match="multiple of the batch size 8"):
        model.predict(x[:5])
    with pytest.raises(ValueError, match="does not match the batch size 8"):
        model.train_on_batch(x[:5], y[:5])
    seen = []
    callback = fastfit.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: seen.append(logs["size"]))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])  # batch_size None: the fixed size
    assert seen == [8, 8, 8]
    assert model.predict(x).shape == (24, 3)


def test_dtype_other_than_float32_or_float64_raises_at_construction():
    for dtype in ("float16", "int32", "mixed_float16"):
        with pytest.raises(ValueError, match="float32' or 'float64"):
            Dense(3, input_dim=4, dtype=dtype)
    assert Dense(3, dtype="float64").dtype == "float64"


# -- model.trainable ---------------------------------------------------------------------------------------------
def test_model_trainable_false_freezes_every_layer(data, core):
    x, y = data
    inputs = Input(shape=(4,))
    base = Model(inputs, Dense(5, activation="relu")(inputs))
    base.trainable = False
    assert base.trainable is False and not base.trainable_weights
    head = Model(inputs, Dense(3, activation="softmax")(base.output))
    head.compile(optimizer="sgd", loss="categorical_crossentropy", engine=core)
    frozen = base.get_weights()
    head.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(frozen, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head.layers[-1].get_weights()[0], 0)


# -- layers --------------------------------------------------------------------------------------------------
def test_flatten_channels_first_raises_where_it_would_reorder():
    with pytest.raises(ValueError, match="channels_first"):
        Sequential([Flatten(data_format="channels_first", input_shape=(3, 4))])
    for shape in ((1, 4), (3, 1), (4,)):  # moving the channel axis changes nothing here
        Sequential([Flatten(data_format="channels_first", input_shape=shape)])


# -- optimizers ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_gradient_clipping_raises(option):
    with pytest.raises(ValueError, match=f"`{option}=1.0` is not implemented"):
        optimizers.Adam(**{option: 1.0})
    optimizers.Adam(**{option: None})
    with pytest.raises(ValueError, match=option):
        optimizers.deserialize({"class_name": "SGD", "config": {"learning_rate": 0.1, option: 1.0}})


def test_optimizer_options_that_were_ignored_now_raise():
    with pytest.raises(ValueError, match="Nadam.*decay"):
        optimizers.Nadam(decay=0.01)
    optimizers.Nadam(decay=0.0)
    with pytest.raises(TypeError, match="epsilon"):
        optimizers.SGD(epsilon=1e-3)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.deserialize({"class_name": "RMSprop", "config": {"learning_rate": 0.1, "momentum": 0.9}})
    assert optimizers.Adam(name="my_adam").name == "my_adam"


def test_keras3_neutral_optimizer_config_keys_load():
    config = {"name": "RMSprop", "learning_rate": 0.01, "weight_decay": None, "clipnorm": None,
              "global_clipnorm": None, "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
              "ema_overwrite_frequency": None, "loss_scale_factor": None, "gradient_accumulation_steps": None,
              "rho": 0.8, "momentum": 0.0, "epsilon": 1e-07, "centered": False}
    optimizer = optimizers.deserialize({"class_name": "RMSprop", "config": config})
    assert optimizer.rho == 0.8 and float(optimizer.lr) == 0.01


# -- callbacks ------------------------------------------------------------------------------------------------
def test_model_checkpoint_refuses_tensorflow_options(tmp_path):
    with pytest.raises(ValueError, match="options"):
        ModelCheckpoint(str(tmp_path / "m.h5"), options=object())
    with pytest.raises(TypeError, match="initial_value_threshold"):
        ModelCheckpoint(str(tmp_path / "m.h5"), initial_value_threshold="low")


# -- Keras 0.x compile(class_mode=), backend epsilon, tf.keras initializer spelling ----------------------------
def test_class_mode_is_accepted_when_it_matches_the_accuracy_fastfit_computes(data, core):
    model = Sequential([Dense(3, input_dim=4, activation="softmax")])
    with pytest.warns(DeprecationWarning, match="class_mode"):
        model.compile(optimizer="sgd", loss="categorical_crossentropy", class_mode="categorical", engine=core)
    model.fit(*data, epochs=1, verbose=0)
    fresh = Sequential([Dense(3, input_dim=4, activation="softmax")])
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="class_mode='binary'"):
        fresh.compile(optimizer="sgd", loss="categorical_crossentropy", class_mode="binary")
    assert not fresh.compiled


def test_set_epsilon_refuses_values_the_losses_would_not_use():
    with pytest.raises(ValueError, match="fixed epsilon 1e-7"):
        fastfit.backend.set_epsilon(1e-4)
    assert fastfit.backend.epsilon() == 1e-7
    fastfit.backend.set_epsilon(1e-7)
    assert optimizers.Adam(epsilon=1e-4).epsilon == 1e-4  # what to do instead


def test_variance_scaling_takes_the_tf_keras_truncated_normal_spelling():
    from fastfit import initializers
    old = initializers.VarianceScaling(scale=2.0, distribution="normal", seed=3)((50, 40))
    new = initializers.VarianceScaling(scale=2.0, distribution="truncated_normal", seed=3)((50, 40))
    np.testing.assert_array_equal(old, new)
    with pytest.raises(ValueError, match="untruncated_normal"):
        initializers.VarianceScaling(distribution="untruncated_normal")


def test_array_like_objects_named_dataset_are_still_arrays(data, core):
    x, y = data

    class Dataset:  # h5py's array-like class has this name; only tf.data's is streamed input
        def __init__(self, array):
            self.array = array

        def __array__(self, dtype=None, copy=None):
            return self.array

        def __len__(self):
            return len(self.array)

    model = mlp(core)
    model.fit(Dataset(x), y, epochs=1, verbose=0)
    assert model.predict(Dataset(x)).shape == (24, 3)
