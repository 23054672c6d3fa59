"""`CodeRoot` / `CodeEntry`: a live, compiled mirror of the stored procedures."""

import logging
from contextlib import asynccontextmanager
from functools import partial

import anyio
from distkv.obj import ClientEntry
from moat.util import NotGiven, Path

from distkv_ext.codekit import upstream
from distkv_ext.codekit.core.compiler import compile_procedure
from distkv_ext.codekit.core.errors import CodeError, EmptyCode, NotFound, NotTrusted
from distkv_ext.codekit.core.paths import as_path
from distkv_ext.codekit.core.signing import check_trusted, with_signature
from distkv_ext.codekit.store.conn import server_errors
from distkv_ext.codekit.store.errtree import error_root
from distkv_ext.codekit.store.mirror import StoreRoot
from distkv_ext.module import Deferred, ModuleRoot, defer, load_requires, uses_stored_modules

from ._value import check_stored, is_process, procedure_value

logger = logging.getLogger(__name__)

__all__ = ["CodeRoot", "CodeEntry"]


class CodeEntry(ClientEntry):
    """One stored procedure, compiled.

    Attributes:
      procedure: the compiled `~distkv_ext.codekit.compiler.Procedure`
        that calls run, or None
      error: the exception from compiling the stored value, if the current
        value does not compile.  The previous good version (if any) keeps
        serving meanwhile.
      reload_event: set (and replaced) whenever a new version compiled.
      verified: the stored value that ``procedure`` was compiled from
        (and, with trusted keys, whose signature was checked): what a
        process-mode run sends to its child, never the store's newer value.
    """

    procedure = None
    error = None
    requires = ()
    verified = None

    def __init__(self, *a, **kw):
        self.reload_event = anyio.Event()
        super().__init__(*a, **kw)

    @property
    def name(self):
        """The procedure's path below the root, as a `Path`."""
        return Path.build(self.subpath)

    @property
    def is_async(self):
        return None if self.procedure is None else self.procedure.is_async

    @property
    def process(self):
        """Does the version that serves ask for process mode (see `is_process`)?"""
        return self.procedure is not None and is_process(self.verified)

    async def set_value(self, value):
        await super().set_value(value)
        if value is NotGiven or value is None:
            self.procedure = None
            self.error = None
            self.reload_event.set()  # running jobs of it must stop
            self.reload_event = anyio.Event()
            return
        try:
            check_stored(value)
            proc = compile_procedure(
                value["code"],
                self.name,
                variables=value.get("vars") or (),
                is_async=value.get("is_async", None),
                defaults=value.get("default", None),
            )
        except (CodeError, TypeError, ValueError) as exc:
            self.error = exc
            logger.warning("Procedure %s does not compile: %s", self.name, exc)
            await self.root.report(self.subpath, exc)
            return
        if not self._trusted(value):
            return
        if uses_stored_modules(value["code"], value.get("requires", ())):
            # fetched now, so that calls (sync, in the event loop) import from memory
            await self.root.need_modules(f"procedure {self.name}", value)
        self.error = None
        self.procedure = proc
        self.verified = value
        req = value.get("requires", ())
        self.requires = tuple(req) if isinstance(req, (list, tuple)) else ()
        await self.root.report(self.subpath, None)
        self.reload_event.set()
        self.reload_event = anyio.Event()

    def _trusted(self, value):
        """With trusted keys (`CodeRoot.trust`): is ``value`` signed by one?
        If not, nothing of this procedure serves (not even an earlier
        version): ``error`` is `NotTrusted`, running jobs of it stop."""
        keys = self.root.trusted
        if keys is None:
            return True
        try:
            check_trusted("proc", self.subpath, value, keys, f"procedure {self.name}")
        except NotTrusted as exc:
            logger.warning("%s", exc)
            self.procedure = None
            self.error = exc
            self.reload_event.set()
            self.reload_event = anyio.Event()
            return False
        return True

    def __call__(self, *a, **kw):
        """Run the procedure.

        Sync code (``is_async`` None) returns its result; async code
        returns a coroutine; threaded code (``is_async`` False) returns an
        awaitable that runs it in a worker thread.
        """
        proc = self._ready()
        if proc.is_async is False:
            return anyio.to_thread.run_sync(partial(proc, *a, **kw))
        return proc(*a, **kw)

    def _ready(self):
        """The compiled procedure, its required modules loaded; `EmptyCode`
        if there is none."""
        proc = self.procedure
        if proc is None:
            if self.error is not None:
                raise EmptyCode(f"{self.name} does not compile: {self.error}")
            raise EmptyCode(f"{self.name} holds no code")
        if self.requires:
            self.root.load_requires(self.requires, f"procedure {self.name}")
        return proc

    def bound(self, *a, **kw):
        """For sync and thread code: a function of no arguments that runs
        the procedure with these arguments (in whichever thread calls it);
        its required modules are loaded now, in the caller's.  Raises
        `EmptyCode` as calling it would."""
        if self.procedure is not None and self.procedure.is_async:
            raise TypeError(f"{self.name} is async code: await it")
        return partial(self._ready(), *a, **kw)


class CodeRoot(StoreRoot):
    """The stored procedures (``.distkv code proc``), compiled and kept current.

    Get it with ``cr = await CodeRoot.as_handler(client)``; it returns once
    the stored procedures are loaded.  Then ``cr("a.b", ...)`` (or a tuple,
    or a `Path`) calls one.  A change in the store is recompiled at once;
    an entry that does not compile is logged and recorded in DistKV's
    error tree (subsystem ``compile``), and the previous version keeps
    serving.

    Stored modules are loaded when first needed, not before (as DistKV's
    handler, which loads none: a handler costs the server no more events
    than DistKV's): ``cr.modules`` is the `ModuleRoot` once a procedure
    ``requires`` a module or imports one that nothing installed provides,
    or when stored code first imports an unknown name by other means (see
    `distkv_ext.module.Deferred`); at once if the program runs one
    already.  The module handler fetches no module when it starts: before
    a procedure is ready, the modules it needs (its ``requires``, what it
    imports, and what those need) are fetched (`ModuleRoot.fetch_needs`),
    and only those.  A procedure's ``requires`` are imported, in order,
    before each call.
    """

    CFG = "codes"
    HISTORY_KIND = "proc"
    err = None
    modules = None
    _started = None
    _modules_lock = None
    _module_listeners = ()
    _deferred = None
    #: public keys (bytes) whose signature a procedure needs to run; None: any runs
    trusted = None

    @classmethod
    def child_type(cls, name):
        return CodeEntry

    @classmethod
    async def as_handler(cls, client, *a, **kw):
        """Return the (shared, per client) handler, loaded."""
        upstream.apply_library()
        async with server_errors():
            return await super().as_handler(client, *a, **kw)

    async def trust(self, keys):
        """From now on, serve only procedures (and import only modules) signed
        by one of ``keys`` (32-byte Ed25519 public keys); None: any.  The
        stored procedures are checked again at once."""
        self.trusted = None if keys is None else frozenset(keys)
        if self.modules is not None:
            self.modules.trust(keys)
        for e in list(self.all_children):
            if e.value is not NotGiven and e.value is not None:
                await e.set_value(e.value)

    def load_requires(self, requires, who):
        """Import stored modules ``requires``, in order (see `ModuleRoot`)."""
        load_requires(requires, who)

    async def run_starting(self):
        self.err = await error_root(self.client)
        self._modules_lock = anyio.Lock()
        self._module_listeners = []
        mods = ModuleRoot.running_for(self.client)
        if mods is not None:
            self._use_modules(mods)
        await super().run_starting()

    @asynccontextmanager
    async def run(self):
        async with super().run() as res:
            undefer = None
            if self.modules is None:
                self._deferred = Deferred(self.load_modules, self._load_modules_soon)
                undefer = defer(self._deferred)
            try:
                yield res
            finally:
                if undefer is not None:
                    undefer()

    # --- stored modules, on demand ---

    async def load_modules(self, *names):
        """Start (or join) the client's `ModuleRoot` handler, if not yet,
        fetch the modules ``names`` (see `ModuleRoot.fetch`); return it.
        Concurrent calls share one start; ``modules`` is set once the
        first of them has fetched its modules."""
        async with self._modules_lock:
            if self._started is None:
                # trusted from the start: the import hook serves as soon as it runs
                self._started = self.modules or await ModuleRoot.as_handler(self.client, trusted=self.trusted)
        mods = self._started
        if names:
            await mods.fetch(*names)
        if self.modules is None:
            self._use_modules(mods)
        return mods

    async def need_modules(self, who, value=None):
        """`load_modules` for ``who`` (a procedure's stored ``value``: and
        fetch what it needs); a failure is logged, not raised (the import
        that needs them fails later, naming the module)."""
        try:
            mods = await self.load_modules()
            if value is not None:
                await mods.fetch_needs(value)
        except Exception as exc:
            logger.warning("Could not load the stored modules (needed by %s): %r", who, exc)

    async def _load_quietly(self, name):
        try:
            await self.load_modules(name)
        except Exception as exc:
            logger.warning("Could not load the stored module %s: %r", name, exc)

    def _load_modules_soon(self, name):
        self._tg.start_soon(self._load_quietly, name)

    def _use_modules(self, mods):
        self.modules = mods
        if self.trusted is not None:  # (a handler that ran before us may trust nothing yet)
            mods.trust(self.trusted)
        if self._deferred is not None:
            self._deferred.done = True
        for cb in self._module_listeners:
            mods.add_listener(cb)

    def add_module_listener(self, callback):
        """Call ``callback(names)`` whenever stored modules change (see
        `ModuleRoot.add_listener`), from when they are loaded."""
        self._module_listeners.append(callback)
        if self.modules is not None:
            self.modules.add_listener(callback)

    async def report(self, path, exc):
        """Record a compile error (or its end) in DistKV's error tree."""
        if self.err is None:
            return
        try:
            if exc is None:
                await self.err.record_working("compile", self._path + path)
            else:
                await self.err.record_error("compile", self._path + path, exc=exc, message="compiler error")
        except Exception as e:  # reporting must never break the handler
            logger.warning("Could not record the compile state of %s: %r", path, e)

    async def add(
        self,
        path,
        code=None,
        is_async=None,
        variables=(),
        requires=(),
        *,
        info=None,
        default=None,
        process=False,
        chain=NotGiven,
        signing_key=None,
    ):
        """Compile and store a procedure; return when this handler has it.

        Code that does not compile raises `CompileError` and nothing is
        written.  ``code=None`` removes the procedure (as in DistKV).
        ``chain``: write only if the stored entry still has this change
        chain (``None``: only if there is no entry).  ``signing_key``: a
        `SigningKey` to sign it with; without one, the stored signature is
        kept if it is still valid (only ``info`` changed).
        """
        path = as_path(path, "procedure")
        if code is None:
            return await self.remove(path)
        value = procedure_value(
            path,
            code,
            is_async=is_async,
            variables=variables,
            requires=requires,
            info=info,
            default=default,
            process=process,
        )
        old = self.follow(path, create=False)
        carry = [old.value.get("sig")] if old is not None and isinstance(old.value, dict) else []
        value = with_signature("proc", path, value, signing_key, carry)
        return await self.write(path, value, chain=chain)

    async def remove(self, path):
        """Delete a stored procedure; `NotFound` if there is none."""
        await self.remove_entry(as_path(path, "procedure"), "procedure")

    def lookup(self, name):
        """The `CodeEntry` at ``name``; `NotFound` if nothing is stored there."""
        path = as_path(name, "procedure")
        entry = self.follow(path, create=False)
        if entry is None or (entry.value is NotGiven and entry.procedure is None):
            raise NotFound("procedure", path)
        return entry

    def __call__(self, name, *a, **kw):
        """Call the procedure at ``name`` (see `CodeEntry.__call__`)."""
        return self.lookup(name)(*a, **kw)
