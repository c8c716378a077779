"""Every construct outside the DSL subset is a ``ScriptCompileError`` at decoration time.

Each test writes a small script whose offending line ends with the marker comment
``# <- here`` and checks the message, the file, that exact line, and that ``str(exc)``
prints the source line beneath the message.
"""

# The scripts below are never run and are wrong on purpose: unused and undefined names,
# and (for mypy) ill-typed; a script has no return annotation.
# ruff: noqa: B007, F821, F841
# mypy: disable-error-code="no-untyped-def, name-defined, attr-defined, operator, assignment"
# mypy: disable-error-code="arg-type, call-arg, call-overload, has-type, used-before-def, misc"
# mypy: disable-error-code="var-annotated"

from __future__ import annotations

import inspect
import linecache
from collections.abc import Callable
from typing import Any

import pytest

from ratescript.exceptions import ScriptCompileError
from ratescript.scriptdsl import Key, Log, Record, allow, deny, now_ms, script

MARKER = "# <- here"


class Pair(Record):
    first: float
    second: float


def compile_error(
    func: Callable[..., Any], fragment: str, *, readonly: bool = False
) -> ScriptCompileError:
    """Compile ``func``, expect a ``ScriptCompileError`` at its marked line, return it."""
    with pytest.raises(ScriptCompileError) as info:
        script(readonly=readonly)(func)
    exc = info.value
    lines, first = inspect.getsourcelines(func)
    marked = [first + i for i, text in enumerate(lines) if text.rstrip().endswith(MARKER)]
    assert len(marked) == 1, "mark exactly one line of the script"
    assert fragment in exc.message
    assert exc.filename == __file__
    assert exc.lineno == marked[0], f"{exc.message} reported on line {exc.lineno}"
    source_line = linecache.getline(__file__, exc.lineno).strip()
    assert MARKER in source_line
    assert str(exc).splitlines()[-1].strip() == source_line
    assert str(exc).startswith(f"{__file__}:{exc.lineno}:")
    return exc


# --- sanity: the harness itself ------------------------------------------------------


def test_a_valid_script_compiles() -> None:
    def fine(k: Key[Pair], limit: float):
        p = k.get(default=Pair(0, now_ms()))
        if p.first < limit:
            k.set(Pair(p.first + 1, p.second), ttl_ms=1000)
            return allow(remaining=limit - p.first - 1)
        return deny(wait_ms=1000)

    assert script(fine).name == "fine"


def test_the_column_points_at_the_construct() -> None:
    def bad(k: Key[float], x: float):
        y = x + "a"  # <- here
        return allow(remaining=y)

    exc = compile_error(bad, "string operations are not supported in scripts")
    source_line = linecache.getline(__file__, exc.lineno)
    assert source_line[exc.col_offset :].startswith('"a"')
    assert f":{exc.col_offset + 1}: " in str(exc)


# --- unsupported statements ------------------------------------------------------------


def test_while_loop() -> None:
    def bad(k: Key[float], x: float):
        while x > 0:  # <- here
            x = x - 1
        return allow()

    compile_error(bad, "`while` loops are not supported in scripts")


def test_try_statement() -> None:
    def bad(k: Key[float], x: float):
        try:  # <- here
            y = x / 2
        except ZeroDivisionError:
            y = 0
        return allow(remaining=y)

    compile_error(bad, "`try` statements are not supported in scripts")


def test_with_statement() -> None:
    def bad(k: Key[float], x: float):
        with x:  # <- here
            pass
        return allow()

    compile_error(bad, "`with` statements are not supported in scripts")


def test_raise_statement() -> None:
    def bad(k: Key[float], x: float):
        if x < 0:
            raise ValueError("negative")  # <- here
        return allow()

    compile_error(bad, "`raise` statements are not supported in scripts")


def test_import() -> None:
    def bad(k: Key[float], x: float):
        import math  # <- here

        return allow(remaining=math.sqrt(x))

    compile_error(bad, "imports are not supported in scripts")


def test_del_statement() -> None:
    def bad(k: Key[float], x: float):
        y = x
        del y  # <- here
        return allow()

    compile_error(bad, "`del` statements are not supported in scripts")


def test_assert_statement() -> None:
    def bad(k: Key[float], x: float):
        assert x > 0  # <- here
        return allow()

    compile_error(bad, "`assert` statements are not supported in scripts")


def test_nested_function() -> None:
    def bad(k: Key[float], x: float):
        def double(y: float) -> float:  # <- here
            return y * 2

        return allow(remaining=double(x))

    compile_error(bad, "nested functions are not supported in scripts")


def test_class_definition() -> None:
    def bad(k: Key[float], x: float):
        class Local(Record):  # <- here
            a: float

        return allow()

    compile_error(bad, "class definitions are not supported in scripts")


def test_global_statement() -> None:
    def bad(k: Key[float], x: float):
        global MARKER  # <- here
        return allow()

    compile_error(bad, "`global` statements are not supported in scripts")


def test_continue() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        total = 0
        for time, amount in entries:
            if amount < 0:
                continue  # <- here
            total += amount
        return allow(remaining=total)

    compile_error(bad, "`continue` is not supported in scripts (Lua 5.1 has none)")


def test_for_over_a_range() -> None:
    def bad(k: Key[float], x: float):
        total = 0
        for i in range(3):  # <- here
            total += i
        return allow(remaining=total)

    compile_error(bad, "`for` loops may only visit a log")


def test_for_over_an_unread_log_key() -> None:
    def bad(log: Key[Log], x: float):
        total = 0
        for time, amount in log:  # <- here
            total += amount
        return allow(remaining=total)

    compile_error(bad, "`for` loops may only visit a log")


def test_for_else() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        found = 0
        for time, amount in entries:  # <- here
            if amount > x:
                found = time
                break
        else:
            found = -1
        return allow(remaining=found)

    compile_error(bad, "`for ... else` is not supported in scripts")


def test_loop_binding_one_name() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        for entry in entries:  # <- here
            pass
        return allow()

    compile_error(bad, "a log loop binds two names")


def test_expression_statement() -> None:
    def bad(k: Key[float], x: float):
        x + 1  # <- here
        return allow()

    compile_error(bad, "an expression on its own does nothing")


def test_chained_assignment() -> None:
    def bad(k: Key[float], x: float):
        a = b = x  # <- here
        return allow(remaining=a + b)

    compile_error(bad, "chained assignment (`a = b = ...`) is not supported")


def test_tuple_assignment_with_too_few_values() -> None:
    def bad(k: Key[float], x: float):
        a, b = x, x, x  # <- here
        return allow(remaining=a + b)

    compile_error(bad, "a tuple assignment needs as many values as names")


# --- names -----------------------------------------------------------------------------


def test_unknown_name() -> None:
    def bad(k: Key[float], x: float):
        y = x + undefined_limit  # <- here
        return allow(remaining=y)

    compile_error(bad, "unknown name `undefined_limit`")


def test_module_globals_are_not_visible() -> None:
    def bad(k: Key[float], x: float):
        return allow(remaining=MARKER)  # <- here

    compile_error(bad, "unknown name `MARKER`: a script sees only its parameters")


def test_builtin_used_without_a_call() -> None:
    def bad(k: Key[float], x: float):
        y = now_ms  # <- here
        return allow(remaining=y)

    compile_error(bad, "`now_ms` must be called")


def test_reserved_leading_underscore() -> None:
    def bad(k: Key[float], x: float):
        _x = x  # <- here
        return allow(remaining=_x)

    compile_error(bad, "names starting with `_` or containing `__` are reserved")


def test_reserved_double_underscore() -> None:
    def bad(k: Key[float], x: float):
        a__b = x  # <- here
        return allow(remaining=a__b)

    compile_error(bad, "reserved for generated code: `a__b`")


def test_reserved_parameter_name() -> None:
    def bad(k: Key[float], _limit: float):  # <- here
        return allow(remaining=_limit)

    compile_error(bad, "reserved for generated code: `_limit`")


def test_non_ascii_variable() -> None:
    # Python takes any Unicode identifier; Lua 5.1 could not load the script.
    def bad(k: Key[float], x: float):
        größe = x + 1  # <- here
        return allow(remaining=größe)

    compile_error(bad, "names in scripts must be ASCII (Lua's are): `größe`")


def test_non_ascii_parameter() -> None:
    def bad(k: Key[float], länge: float):  # <- here
        return allow(remaining=länge)

    compile_error(bad, "names in scripts must be ASCII")


def test_non_ascii_loop_name() -> None:
    def bad(k: Key[Log], x: float):
        entries = k.get()
        for t, stück in entries:  # <- here
            pass
        return allow(remaining=x)

    compile_error(bad, "names in scripts must be ASCII (Lua's are): `stück`")


class Sized(Record):
    größe: float


class Hidden(Record):
    _x: float


def test_non_ascii_field_of_a_key_record() -> None:
    def bad(k: Key[Sized], x: float):  # <- here
        return allow(remaining=x)

    compile_error(bad, "record `Sized` has a field `größe`: field names must be ASCII")


def test_non_ascii_field_of_a_record_variable() -> None:
    def bad(k: Key[float], x: float):
        s = Sized(x)  # <- here
        return allow(remaining=x)

    compile_error(bad, "record `Sized` has a field `größe`")


def test_record_field_named_like_generated_code() -> None:
    # `b.__x` would be `b___x`, as `b_.x` would: two values in one variable.
    def bad(k: Key[float], x: float):
        b = Hidden(x)  # <- here
        return allow(remaining=x)

    compile_error(bad, "neither start with `_` nor contain `__`")


def test_script_named_like_a_generated_helper() -> None:
    # The generated Python defines the script as a global next to `_rs_floor` & co.
    def _rs_floor(k: Key[float], x: float):  # <- here
        return allow(remaining=x // 2)

    compile_error(_rs_floor, "reserved for generated code: `_rs_floor`")


def test_script_named_like_a_builtin() -> None:
    def max(k: Key[float], x: float):  # <- here
        return allow(remaining=min(x, 1))

    compile_error(max, "`max` is a builtin of the script language")


def test_assigning_a_builtin() -> None:
    def bad(k: Key[float], x: float):
        min = 1  # <- here
        return allow(remaining=min)

    compile_error(bad, "`min` is a builtin of the script language and cannot be assigned")


def test_assigning_float_would_break_generated_python() -> None:
    # The generated Python calls `float(...)` (for `count()`); a variable named
    # `float` would shadow it there.
    def bad(log: Key[Log], x: float):
        entries = log.get()
        float = entries.count()  # <- here
        return allow(remaining=float)

    compile_error(bad, "`float` is a builtin of the script language and cannot be assigned")


def test_changing_a_variables_type() -> None:
    def bad(k: Key[float], x: float):
        y = x
        y = x > 1  # <- here
        return allow(remaining=x)

    compile_error(bad, "`y` holds a number and cannot be assigned a boolean")


# --- keys --------------------------------------------------------------------------------


def test_get_on_an_undeclared_key() -> None:
    def bad(k: Key[float], x: float):
        v = other.get(default=0)  # <- here
        return allow(remaining=v)

    compile_error(bad, "`other` is not a key declared as a parameter of the script")


def test_set_on_an_undeclared_key() -> None:
    def bad(k: Key[float], x: float):
        other.set(x)  # <- here
        return allow()

    compile_error(bad, "`other` is not a key declared as a parameter of the script")


def test_key_created_inside() -> None:
    def bad(k: Key[float], x: float):
        extra = Key()  # <- here
        return allow(remaining=extra)

    compile_error(bad, "keys must be declared as parameters of the script")


def test_get_without_default() -> None:
    def bad(k: Key[float], x: float):
        v = k.get()  # <- here
        return allow(remaining=v)

    compile_error(bad, "`k.get()` needs `default=`")


def test_record_get_without_default() -> None:
    def bad(k: Key[Pair], x: float):
        p = k.get()  # <- here
        return allow(remaining=p.first)

    compile_error(bad, "`k.get()` needs `default=`")


def test_log_get_with_default() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get(default=0)  # <- here
        return allow(remaining=entries.sum())

    compile_error(bad, "a log key has no default: a missing log is empty")


def test_get_inside_an_expression() -> None:
    def bad(k: Key[float], x: float):
        v = k.get(default=0) + 1  # <- here
        return allow(remaining=v)

    compile_error(bad, "`k.get()` must be assigned to a name on its own")


def test_get_value_not_used() -> None:
    def bad(k: Key[float], x: float):
        k.get(default=0)  # <- here
        return allow()

    compile_error(bad, "the value of `k.get()` must be assigned")


def test_unknown_key_method() -> None:
    def bad(k: Key[float], x: float):
        k.incr(1)  # <- here
        return allow()

    compile_error(bad, "keys have `get`, `set` and `delete`, not `incr`")


def test_key_used_as_a_value() -> None:
    def bad(k: Key[float], x: float):
        return allow(remaining=k + x)  # <- here

    compile_error(bad, "`k` is a key: use `k.get(...)` to read it")


def test_assigning_to_a_key() -> None:
    def bad(k: Key[float], x: float):
        k = x  # <- here
        return allow()

    compile_error(bad, "`k` is a key; keys cannot be assigned")


def test_key_written_inside_a_loop() -> None:
    def bad(log: Key[Log], total: Key[float], x: float):
        entries = log.get()
        for time, amount in entries:
            total.set(amount)  # <- here
        return allow()

    compile_error(bad, "keys cannot be written inside a loop")


def test_set_in_a_readonly_script() -> None:
    def bad(k: Key[float], x: float):
        v = k.get(default=0)
        k.set(v + x)  # <- here
        return allow(remaining=v)

    compile_error(bad, "`k.set` writes, but the script is read-only", readonly=True)


def test_delete_in_a_readonly_script() -> None:
    def bad(k: Key[float], x: float):
        if x > 0:
            k.delete()  # <- here
        return allow()

    compile_error(bad, "`k.delete` writes, but the script is read-only", readonly=True)


def test_readonly_script_may_read() -> None:
    def fine(k: Key[float], x: float):
        v = k.get(default=0)
        return allow(remaining=v + x)

    assert script(readonly=True)(fine).ir.readonly


# --- calls -------------------------------------------------------------------------------


def test_print() -> None:
    def bad(k: Key[float], x: float):
        print(x)  # <- here
        return allow()

    compile_error(bad, "calls to arbitrary functions are not supported in scripts: `print`")


def test_math_sqrt() -> None:
    def bad(k: Key[float], x: float):
        y = math.sqrt(x)  # <- here
        return allow(remaining=y)

    compile_error(bad, "calls to arbitrary functions are not supported in scripts: `math.sqrt`")


def test_method_on_a_number() -> None:
    def bad(k: Key[float], x: float):
        y = x.hex()  # <- here
        return allow(remaining=y)

    compile_error(bad, "calls to arbitrary functions are not supported in scripts: `x.hex`")


def test_builtin_with_wrong_arity() -> None:
    def bad(k: Key[float], x: float):
        y = min(x)  # <- here
        return allow(remaining=y)

    compile_error(bad, "`min` takes at least 2 positional number arguments")


def test_now_ms_with_an_argument() -> None:
    def bad(k: Key[float], x: float):
        y = now_ms(x)  # <- here
        return allow(remaining=y)

    compile_error(bad, "`now_ms()` takes no arguments")


def test_lambda() -> None:
    def bad(k: Key[float], x: float):
        y = lambda: x  # noqa: E731  # <- here
        return allow(remaining=y)

    compile_error(bad, "lambdas are not supported in scripts")


def test_list_display() -> None:
    def bad(k: Key[float], x: float):
        y = [x, x]  # <- here
        return allow(remaining=y)

    compile_error(bad, "lists are not supported in scripts")


def test_comprehension() -> None:
    def bad(k: Key[float], x: float):
        y = [v for v in (x, 1)]  # <- here
        return allow(remaining=y)

    compile_error(bad, "comprehensions are not supported in scripts")


# --- strings -----------------------------------------------------------------------------


def test_string_literal() -> None:
    def bad(k: Key[float], x: float):
        name = "bucket"  # <- here
        return allow(remaining=x)

    compile_error(bad, "string operations are not supported in scripts")


def test_f_string() -> None:
    def bad(k: Key[float], x: float):
        label = f"{x} hits"  # <- here
        return allow(remaining=x)

    compile_error(bad, "string operations are not supported in scripts")


def test_string_concatenation() -> None:
    def bad(k: Key[float], x: float):
        label = "a" + x  # <- here
        return allow(remaining=label)

    compile_error(bad, "string operations are not supported in scripts")


# --- returns and verdicts -----------------------------------------------------------------


def test_missing_return() -> None:
    def bad(k: Key[float], x: float):
        y = x + 1  # <- here

    compile_error(bad, "missing return: the script can reach its end without returning")


def test_missing_return_after_if_without_else() -> None:
    def bad(k: Key[float], x: float):
        if x > 0:  # <- here
            return allow()

    compile_error(bad, "missing return")


def test_missing_return_on_one_branch() -> None:
    def bad(k: Key[float], x: float):
        if x > 0:  # <- here
            return allow()
        else:
            y = x

    compile_error(bad, "missing return")


def test_return_of_a_number() -> None:
    def bad(k: Key[float], x: float):
        return x  # <- here

    compile_error(bad, "a script returns `allow(...)` or `deny(wait_ms=...)`")


def test_bare_return() -> None:
    def bad(k: Key[float], x: float):
        return  # <- here

    compile_error(bad, "a script returns `allow(...)` or `deny(wait_ms=...)`")


def test_allow_not_returned() -> None:
    def bad(k: Key[float], x: float):
        allow(remaining=x)  # <- here
        return deny(wait_ms=1)

    compile_error(bad, "`allow(...)` must be returned: `return allow(...)`")


def test_deny_assigned() -> None:
    def bad(k: Key[float], x: float):
        verdict = deny(wait_ms=x)  # <- here
        return verdict

    compile_error(bad, "`deny(...)` can only be returned")


def test_deny_without_wait_ms() -> None:
    def bad(k: Key[float], x: float):
        return deny(remaining=x)  # <- here

    compile_error(bad, "`deny` needs `wait_ms`")


def test_allow_with_wait_ms() -> None:
    def bad(k: Key[float], x: float):
        return allow(wait_ms=x)  # <- here

    compile_error(bad, "`allow` has no `wait_ms` (it is 0)")


def test_verdict_with_too_many_positional_arguments() -> None:
    def bad(k: Key[float], x: float):
        return allow(x, x, x)  # <- here

    compile_error(bad, "`allow` takes at most 2 positional arguments")


def test_verdict_argument_given_twice() -> None:
    def bad(k: Key[float], x: float):
        return deny(x, wait_ms=x)  # <- here

    compile_error(bad, "`wait_ms` given twice")


def test_reserved_metadata_name() -> None:
    def bad(k: Key[float], x: float):
        return allow(remaining=x, _hidden=1)  # <- here

    compile_error(bad, "metadata names cannot start with `_`: `_hidden`")


def test_unreachable_after_return() -> None:
    def bad(k: Key[float], x: float):
        return allow()
        y = x  # <- here

    compile_error(bad, "unreachable statement: nothing may follow `return` or `break`")


def test_unreachable_after_if_returning_on_both_branches() -> None:
    def bad(k: Key[float], x: float):
        if x > 0:
            return allow()
        else:
            return deny(wait_ms=1)
        return allow()  # <- here

    compile_error(bad, "unreachable statement")


def test_unreachable_after_break() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        last = 0
        for time, amount in entries:
            break
            last = time  # <- here
        return allow(remaining=last)

    compile_error(bad, "unreachable statement")


# --- flow ----------------------------------------------------------------------------------


def test_tuple_assignment_repeating_a_name() -> None:
    def bad(k: Key[float], a: float):
        x, y, x = a, a + 1, a + 2  # <- here
        return allow(remaining=x + y)

    compile_error(bad, "`x` is assigned twice in one tuple assignment")


def test_use_before_the_first_assignment() -> None:
    # Names are learnt in source order, so here `y` is not known yet.
    def bad(k: Key[float], x: float):
        z = y + 1  # <- here
        y = x
        return allow(remaining=z + y)

    compile_error(bad, "unknown name `y`")


def test_use_before_assignment_in_a_later_statement() -> None:
    def bad(k: Key[float], x: float):
        if x > 0:
            y = x
        z = y + 1  # <- here
        y = 2
        return allow(remaining=z + y)

    compile_error(bad, "`y` may be used before it is assigned")


def test_use_when_assigned_on_one_branch_only() -> None:
    def bad(k: Key[float], x: float):
        if x > 0:
            y = x
        return allow(remaining=y)  # <- here

    compile_error(bad, "`y` may be used before it is assigned")


def test_use_when_assigned_only_in_else() -> None:
    def bad(k: Key[float], x: float):
        if x > 0:
            pass
        else:
            y = x
        return allow(remaining=y)  # <- here

    compile_error(bad, "`y` may be used before it is assigned")


def test_use_after_a_loop_of_a_name_assigned_in_it() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        for time, amount in entries:
            last = time
        return allow(remaining=last)  # <- here

    compile_error(bad, "`last` may be used before it is assigned")


def test_use_of_a_loop_variable_after_the_loop() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        for time, amount in entries:
            pass
        return allow(remaining=time)  # <- here

    compile_error(bad, "`time` may be used before it is assigned")


def test_assignment_on_a_returning_branch_does_not_count() -> None:
    def fine(k: Key[float], x: float):
        if x > 0:
            return allow()
        else:
            y = x
        return allow(remaining=y)

    assert script(fine).name == "fine"


# --- types ---------------------------------------------------------------------------------


def test_number_as_a_condition() -> None:
    def bad(k: Key[float], x: float):
        if x:  # <- here
            return allow()
        return deny(wait_ms=1)

    compile_error(bad, "a condition must be a comparison or a boolean, not a number")


def test_number_in_a_conditional_expression() -> None:
    def bad(k: Key[float], x: float):
        y = 1 if x else 2  # <- here
        return allow(remaining=y)

    compile_error(bad, "a condition must be a comparison or a boolean")


def test_and_on_numbers() -> None:
    def bad(k: Key[float], x: float):
        y = x and 1  # <- here
        return allow(remaining=y)

    compile_error(bad, "a condition must be a comparison or a boolean, not a number")


def test_not_on_a_number() -> None:
    def bad(k: Key[float], x: float):
        if not x:  # <- here
            return allow()
        return deny(wait_ms=1)

    compile_error(bad, "a condition must be a comparison or a boolean")


def test_comparing_booleans_with_less_than() -> None:
    def bad(k: Key[float], x: float):
        if (x > 1) < (x > 2):  # <- here
            return allow()
        return deny(wait_ms=1)

    compile_error(bad, "cannot compare a boolean with `<` to a boolean")


def test_comparing_a_number_with_a_boolean() -> None:
    def bad(k: Key[float], x: float):
        if x == (x > 1):  # <- here
            return allow()
        return deny(wait_ms=1)

    compile_error(bad, "cannot compare a number with `==` to a boolean")


def test_boolean_in_arithmetic() -> None:
    def bad(k: Key[float], x: float):
        big = x > 10
        return allow(remaining=big + 1)  # <- here

    compile_error(bad, "expected a number, got a boolean")


def test_is_comparison() -> None:
    def bad(k: Key[float], x: float):
        if x is None:  # <- here
            return allow()
        return deny(wait_ms=1)

    compile_error(bad, "`is` comparisons are not supported in scripts")


def test_power_operator() -> None:
    def bad(k: Key[float], x: float):
        y = x**2  # <- here
        return allow(remaining=y)

    exc = compile_error(bad, "`**`")
    assert "are not supported in scripts" in exc.message
    assert "operator are" not in exc.message  # reads as English


def test_power_augmented_assignment() -> None:
    def bad(k: Key[float], x: float):
        y = x
        y **= 2  # <- here
        return allow(remaining=y)

    compile_error(bad, "`**`")


def test_bitwise_operator() -> None:
    def bad(k: Key[float], x: float):
        y = x & 1  # <- here
        return allow(remaining=y)

    compile_error(bad, "bitwise operators are not supported in scripts")


def test_none_literal() -> None:
    def bad(k: Key[float], x: float):
        y = None  # <- here
        return allow(remaining=y)

    compile_error(bad, "`None` is not a number or boolean")


def test_non_finite_literal() -> None:
    def bad(k: Key[float], x: float):
        y = 1e999  # <- here
        return allow(remaining=x + y)

    compile_error(bad, "number literals must be finite")


def test_inexact_integer_literal() -> None:
    def bad(k: Key[float], x: float):
        y = 9007199254740993  # <- here
        return allow(remaining=x + y)

    compile_error(bad, "9007199254740993 is not exactly representable as a double")


# --- signature ------------------------------------------------------------------------------


def test_star_args() -> None:
    def bad(k: Key[float], *rest: float):  # <- here
        return allow()

    compile_error(bad, "scripts take plain parameters only (no *args, **kwargs")


def test_star_star_kwargs() -> None:
    def bad(k: Key[float], **rest: float):  # <- here
        return allow()

    compile_error(bad, "scripts take plain parameters only")


def test_keyword_only_parameter() -> None:
    def bad(k: Key[float], *, x: float):  # <- here
        return allow(remaining=x)

    compile_error(bad, "keyword-only or positional-only parameters")


def test_parameter_default() -> None:
    def bad(
        k: Key[float],
        x: float = 1,  # <- here
    ):
        return allow(remaining=x)

    compile_error(bad, "script parameters cannot have defaults")


def test_missing_annotation() -> None:
    def bad(k: Key[float], x):  # <- here
        return allow(remaining=x)

    compile_error(bad, "parameter `x` needs an annotation")


def test_annotation_that_is_not_a_number_or_key() -> None:
    def bad(k: Key[float], x: bool):  # <- here
        return allow()

    compile_error(bad, "parameter `x` must be a number (`float`) or a key (`Key[...]`), not `bool`")


def test_key_of_str() -> None:
    def bad(k: Key[str], x: float):  # <- here
        return allow()

    compile_error(bad, "key `k` must hold `float`, `Log` or a Record subclass with fields")


def test_key_of_a_record_without_fields() -> None:
    def bad(k: Key[Record], x: float):  # <- here
        return allow()

    compile_error(bad, "key `k` must hold `float`, `Log` or a Record subclass with fields")


def test_unresolvable_annotation() -> None:
    def bad(k: Key[Missing], x: float):  # <- here
        return allow()

    compile_error(bad, "cannot resolve annotation `Key[Missing]`")


def test_no_key_parameter() -> None:
    def bad(x: float):  # <- here
        return allow(remaining=x)

    compile_error(bad, "a script needs at least one key parameter")


# --- records ---------------------------------------------------------------------------------


def test_record_unknown_field() -> None:
    def bad(k: Key[Pair], x: float):
        p = k.get(default=Pair(0, 0))
        return allow(remaining=p.third)  # <- here

    compile_error(bad, "`Pair` has no field `third`")


def test_record_assign_unknown_field() -> None:
    def bad(k: Key[Pair], x: float):
        p = k.get(default=Pair(0, 0))
        p.third = x  # <- here
        return allow()

    compile_error(bad, "`Pair` has no field `third`")


def test_record_unknown_keyword_field() -> None:
    def bad(k: Key[Pair], x: float):
        p = Pair(first=x, third=x)  # <- here
        return allow(remaining=p.first)

    compile_error(bad, "`Pair` has no field `third`")


def test_record_missing_field() -> None:
    def bad(k: Key[Pair], x: float):
        k.set(Pair(x))  # <- here
        return allow()

    compile_error(bad, "`Pair` needs a value for `second`")


def test_record_too_many_values() -> None:
    def bad(k: Key[Pair], x: float):
        p = k.get(default=Pair(0, 0, 0))  # <- here
        return allow(remaining=p.first)

    compile_error(bad, "`Pair` has 2 fields, got 3 values")


def test_record_field_given_twice() -> None:
    def bad(k: Key[Pair], x: float):
        p = Pair(x, x, first=x)  # <- here
        return allow(remaining=p.first)

    compile_error(bad, "field `first` of `Pair` given twice")


def test_record_used_as_a_number() -> None:
    def bad(k: Key[Pair], x: float):
        p = k.get(default=Pair(0, 0))
        return allow(remaining=p)  # <- here

    compile_error(bad, "`p` is a `Pair` record, not a value")


def test_number_stored_in_a_record_key() -> None:
    def bad(k: Key[Pair], x: float):
        k.set(x)  # <- here
        return allow()

    compile_error(bad, "expected a `Pair` record, got `x`")


# --- logs --------------------------------------------------------------------------------------


def test_log_changed_after_it_was_stored() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        log.set(entries)
        entries.append(now_ms(), x)  # <- here
        return allow()

    compile_error(bad, "log `entries` cannot change after it was stored; store it last")


def test_log_changed_while_visited() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        for time, amount in entries:
            entries.drop_oldest()  # <- here
        return allow()

    compile_error(bad, "log `entries` cannot change while it is being visited")


def test_log_oldest_without_default() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        first = entries.oldest()  # <- here
        return allow(remaining=first)

    compile_error(bad, "`entries.oldest()` needs `default=`: its value for an empty log")


def test_log_unknown_method() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        entries.clear()  # <- here
        return allow()

    compile_error(bad, "logs have no method `clear`")


def test_log_value_not_used() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        entries.sum()  # <- here
        return allow()

    compile_error(bad, "the value of `entries.sum()` must be used")


def test_log_append_with_one_argument() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        entries.append(x)  # <- here
        return allow()

    compile_error(bad, "`append(time, amount)` takes two positional arguments")


def test_log_bound_twice() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        entries = log.get()  # <- here
        return allow(remaining=entries.sum())

    compile_error(bad, "`entries` is already bound; a log variable is bound once")


def test_log_used_as_a_number() -> None:
    def bad(log: Key[Log], x: float):
        entries = log.get()
        return allow(remaining=entries)  # <- here

    compile_error(bad, "`entries` is a log, not a value")
