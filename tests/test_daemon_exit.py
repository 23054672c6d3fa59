"""How the runner daemon ends when its roots lose their server or their
name: one error and one exit status, however many roots noticed at once."""

import anyio
import pytest

from distkv_ext.codekit.cli.boundary import _leaves, _translate
from distkv_ext.codekit.core.status import ExitStatus
from distkv_ext.run import NameClash
from distkv_ext.run._daemon import _die_with_the_connection


class _Root:
    """What `_die_with_the_connection` reads of a runner root."""

    def __init__(self) -> None:
        self.lost: BaseException | None = None
        self.lost_event = anyio.Event()

    def lose(self, exc: BaseException) -> None:
        self.lost = exc
        self.lost_event.set()


async def _end(roots, lose) -> BaseException:
    with pytest.raises(BaseException) as info:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_die_with_the_connection, roots)
            await anyio.sleep(0.1)
            lose()
    return info.value


async def test_a_namesake_noticed_by_every_root_at_once_is_one_clash():
    roots = [_Root(), _Root(), _Root()]

    def lose():
        for r in roots:  # one heartbeat reaches each group in the same tick
            r.lose(NameClash("another runner of group any.g is called n (run x)"))

    exc = await _end(roots, lose)
    assert len(_leaves(exc)) == 1
    err = _translate(exc)
    assert err is not None and err.exit_code == ExitStatus.USAGE
    assert err.message == "another runner of group any.g is called n (run x): give each runner its own --name"


async def test_a_clash_wins_over_a_lost_connection_noticed_with_it():
    roots = [_Root(), _Root()]

    def lose():
        roots[0].lose(ConnectionResetError("gone"))
        roots[1].lose(NameClash("another runner of group all.g is called n (run x)"))

    err = _translate(await _end(roots, lose))
    assert err is not None and err.exit_code == ExitStatus.USAGE


async def test_one_lost_server_is_exit_status_5():
    roots = [_Root(), _Root()]
    err = _translate(await _end(roots, lambda: roots[1].lose(ConnectionResetError("gone"))))
    assert err is not None and err.exit_code == ExitStatus.SERVER == 5
    assert err.message == "lost the connection to the DistKV server: ConnectionResetError('gone')"
