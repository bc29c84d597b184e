"""What every command shares (``tfprune <command>``, and the scripts in experiments/ that call
the same modules): flag definitions built from the registries with
defaults read from the job configs, and a runner that turns tfprune's input errors into a
one-line message and exit status 2.

Nothing here imports TensorFlow: a script defines its flags and builds its config from modules
that do not (tfprune.jobs.configs and the registries' names), and imports its job in main, after
the config is built; so --help and a bad flag or value answer in well under a second."""

import dataclasses
import os
import re
import sys

from absl import app, flags, logging

import tfprune  # noqa: F401  (sets up Keras 2 before anything imports TensorFlow)
from tfprune import declare, distribute, lifeline, quiet
from tfprune.cli import COMMANDS
from tfprune.declare import option
from tfprune.errors import TfpruneError, file_fault_message
from tfprune.pruning.options import DynamicConfig

FLAGS = flags.FLAGS
EXIT_BAD_INPUT = 2
EXIT_WORKER_LOST = 3


@dataclasses.dataclass
class RunFields:
    """The flags of every command that are not part of its config: where it writes, how it
    treats a directory already in use, what it prints (they change no result)."""

    output_dir: str = option(None, "Run directory.")
    overwrite: bool = option(False, "Replace an output directory that holds a run with a "
                             "different configuration.")
    wait: bool = option(False, "When another job is using the output directory, wait for it "
                        "to finish and then go on (resuming its work) instead of exiting.")
    verbose: bool = option(False, "Show what TensorFlow, Keras, tfmot and LiteRT print (C++ "
                           "log lines, Python warnings), hidden by default; also "
                           f"{quiet.VERBOSE_VARIABLE}=1 in the environment.")


_DEFINED = []  # the flags define_command_flags made in this process (one command's)


def _define(field, declaration, flag_values, unset=False, help_text=None):
    """One absl flag from one declared field. ``unset``: the flag's default is None (not
    given: the config's own default applies, named in the help)."""
    name = declare.flag_name(field, declaration)
    text = help_text or declaration.text()
    default = field.default
    if unset:
        if default is not None:
            text += f" (default {default})"
        default = None
    kind = field.type
    bounds = {k: v for k, v in (("lower_bound", declaration.lower),
                                ("upper_bound", declaration.upper)) if v is not None}
    names = declaration.names()
    if kind is bool:
        flags.DEFINE_bool(name, default, text, flag_values=flag_values)
    elif kind is int:
        flags.DEFINE_integer(name, default, text, flag_values=flag_values, **bounds)
    elif kind is float:
        flags.DEFINE_float(name, default, text, flag_values=flag_values, **bounds)
    elif kind is tuple:
        listed = None if default is None else [
            f"{v:g}" if isinstance(v, float) else str(v) for v in default]
        flags.DEFINE_list(name, listed, text, flag_values=flag_values)
    elif names is not None and kind is str:
        flags.DEFINE_enum(name, default, names, text, flag_values=flag_values)
    else:
        flags.DEFINE_string(name, default, text, flag_values=flag_values)
    if declaration.validator is not None:
        def valid(value, check=declaration.validator, field_name=field.name):
            if value is None:
                return True
            try:
                check(field_name, value)
            except TfpruneError as err:
                raise flags.ValidationError(str(err)) from None
            return True
        flags.register_validator(name, valid, flag_values=flag_values)
    return name


def define_command_flags(command, flag_values=FLAGS):
    """Every flag of ``command`` (a name of tfprune.cli.COMMANDS), made from the declarations
    its entry names (its config, then the run flags); returns their names in that order."""
    spec = COMMANDS.get(command)
    names = []
    for source, unset in spec.sources():
        for field, declaration in declare.declared(source):
            if declaration.flag is not False and declare.flag_name(field, declaration) \
                    not in flag_values:
                names.append(_define(field, declaration, flag_values, unset))
    for field, declaration in declare.declared(RunFields):
        text = f"Run directory. Default: {spec.output_dir}." if field.name == "output_dir" \
            else None
        names.append(_define(field, declaration, flag_values, help_text=text))
    for name in spec.required:
        flags.mark_flag_as_required(name, flag_values=flag_values)
    if flag_values is FLAGS:
        _DEFINED.extend(names)
    return names


def config_values(config_class, flag_values=FLAGS):
    """{field: value} of ``config_class``'s declared fields from their flags (a list flag's
    items converted to the declared type; a non-number in a numeric list is a clear error)."""
    values = {}
    for field, declaration in declare.declared(config_class):
        name = declare.flag_name(field, declaration)
        if declaration.flag is False or name not in flag_values:
            continue
        value = flag_values[name].value
        if field.type is tuple and value is not None:
            value = parse_numbers(name, value, declaration.items) \
                if declaration.items is not str else tuple(value)
        values[field.name] = value
    return values


def dynamic_options(flag_values=FLAGS):
    """The deciding methods' options the user set, as DynamicConfig fields (None if none)."""
    options = {name: value for name, value in config_values(DynamicConfig, flag_values).items()
               if value is not None}
    return options or None


def _parse_flags(argv):
    """absl's flag parsing, its errors in the same style and with the same exit status as
    every other bad input (absl would print 'FATAL Flags parsing error' and exit 1)."""
    try:
        return FLAGS(argv)
    except flags.Error as err:
        message = str(err).splitlines()[0]
        named = re.match(r"flag --(\w+)=", message)
        if named and named.group(1) in FLAGS and f"`{named.group(1)}`" not in message:
            # (a declared validator's message names its rule: no syntax hint added to it)
            allowed = FLAGS[named.group(1)].parser.syntactic_help
            if allowed and allowed not in message:
                message += f" (allowed: {allowed})"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _lost_worker(err):
    """True for the error a multi-worker run's collective ops raise when a peer stopped.
    TensorFlow is in the process whenever such an error can be raised (only then is it read)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and distribute.is_multi_worker() and isinstance(
        err, (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError))


def run(main, argv=None, doc=None):
    """app.run(main) on ``argv`` (default sys.argv); ``--help`` shows ``doc`` (the command
    module's docstring) and the command's flags. Bad flags, TfpruneError and file-system faults (OSError, and TensorFlow's
    writers' errors that are one: errors.file_fault_message) end with one line "error: ..." on
    stderr and exit code 2, without a traceback; Ctrl-C and SIGTERM stop the job with one line
    and exit 130 and 143. Quiet unless --verbose or TFPRUNE_VERBOSE=1 (tfprune/quiet.py: the
    C++ noise TensorFlow and LiteRT print filtered from fd 2, the libraries' Python warnings and
    log records hidden); main imports TensorFlow only after that is set up."""
    def quietly(argv):
        verbose = FLAGS["verbose"].value if "verbose" in FLAGS else False
        with quiet.command(verbose, loggers=[logging.get_absl_logger()]):
            return guarded(argv)

    def guarded(argv):
        if len(argv) > 1:
            print(f"error: unexpected positional arguments: {' '.join(argv[1:])}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        if not FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
        lifeline.raise_on_sigterm()  # stopped as by Ctrl-C (below: its own line and status)
        try:
            return main(argv)
        except TfpruneError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except Exception as err:
            fault = file_fault_message(err, FLAGS["output_dir"].value if "output_dir" in FLAGS
                                       else None)
            if fault is not None:  # OSError, or a TensorFlow writer's file-system error
                print(f"error: {fault}", file=sys.stderr)
                sys.exit(EXIT_BAD_INPUT)
            if not _lost_worker(err):
                raise
            # A peer of a multi-worker run stopped (the collective ops fail on the others).
            reason = str(err).strip().splitlines()[0][:300]
            print(f"error: a worker of this multi-worker run stopped ({reason}); start every "
                  "worker again with the same command: the run resumes from its last "
                  "checkpoint", file=sys.stderr)
            sys.exit(EXIT_WORKER_LOST)
        except KeyboardInterrupt as err:
            terminated = isinstance(err, lifeline.Terminated)
            print(f"{'terminated' if terminated else 'interrupted'}; finished results are kept, "
                  "rerun the same command to resume", file=sys.stderr)
            sys.exit(lifeline.EXIT_TERMINATED if terminated else 130)

    for name in _DEFINED:  # absl's --help lists the key flags of sys.argv[0]
        FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])
    if doc:
        sys.modules["__main__"].__doc__ = doc
    app.run(quietly, argv=argv, flags_parser=_parse_flags)


def parse_numbers(flag, values, kind=float):
    """A list flag's strings as numbers; a clear error naming the flag otherwise."""
    try:
        return tuple(kind(v) for v in values)
    except ValueError:
        raise TfpruneError(f"`--{flag}` must be a comma-separated list of numbers, got "
                           f"{','.join(values)!r}") from None


def log(message):
    print(distribute.worker_label() + message, flush=True)


def default_output_dir(*parts):
    return os.path.join("saved_models", *parts)
