#!/usr/bin/env node
// iommufd-rig: runs one command inside a QEMU guest that has a real iommufd kernel, an emulated
// intel-iommu and the `edu` DMA test device, and exits with that command's status.
//
//   iommufd-rig [options] -- command [args...]
//
// The guest's root is the host's / shared read-only over 9p, so the guest sees the same files and
// programs as the host; the working directory (and any --rw dir) is shared writable at its own path.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const cacheDir = process.env.IOMMUFD_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'iommufd-node');

const usage = `usage: iommufd-rig [options] -- command [args...]

Boots the rig guest (QEMU q35 + intel-iommu + edu) and runs one command in it.
  --kernel newest|6.12|PATH  guest kernel: a series built from Debian's source (cached), or a bzImage
                             (default: newest)
  --intel-iommu on|off       the guest's intel_iommu= (default on). On 6.12 the kernel's iommufd
                             test device only binds with it off.
  --qemu system|iopf|nested|PATH
                             system: the host's qemu-system-x86_64 (default). iopf: QEMU 10.2 built by
                             scripts/build-qemu.sh (cached) with the project's page-request patch and
                             its PRI test device (iommufd-pri-testdev, 1234:11e9) added; nested: the
                             same with the intel-iommu's x-nesting=on (nested translation, ecap NEST);
                             PATH: such a binary
  --accel auto|kvm|tcg       auto uses KVM only if a probe boot shows it works here (default auto)
  --tcg-thread auto|single|multi
                             TCG's vCPU threads: one for all vCPUs, or one each. auto: single with
                             --qemu iopf or nested (multi lost an interrupt there: docs/rig.md),
                             else multi (default auto)
  --timeout SECONDS          hard limit for the whole boot (default 900); exit status 124 when hit
  --stall SECONDS            stop the boot when neither the command nor the guest kernel has
                             printed anything for that long (default 0: never); exit status 124
  --mem MIB                  guest memory (default 3072)
  --smp N                    guest CPUs (default 2)
  --cwd DIR                  working directory of the command (default: the current one)
  --rw DIR                   share DIR writable at the same path (repeatable; default: --cwd)
  --env NAME=VALUE           extra environment for the command (repeatable)
  --out DIR                  job directory, mounted writable at /run/rig in the guest; keeps
                             serial.log (the guest kernel's console) and qemu.log (QEMU's stderr)
                             (default: a new dir in the cache)
  -q, --quiet                no rig progress lines on stderr
In the guest: IOMMUFD_RIG=1, IOMMUFD_RIG_KERNEL=<series or path>, IOMMUFD_RIG_KERNEL_RELEASE=<x.y.z>,
IOMMUFD_RIG_KERNEL_DIR=<the image's directory: config, selftests/>, IOMMUFD_RIG_INTEL_IOMMU=on|off,
IOMMUFD_RIG_QEMU=system|iopf|nested.`;

function fail(msg, code = 2) {
  process.stderr.write(`iommufd-rig: ${msg}\n`);
  process.exit(code);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      kernel: { type: 'string', default: 'newest' },
      'intel-iommu': { type: 'string', default: 'on' },
      qemu: { type: 'string', default: 'system' },
      accel: { type: 'string', default: 'auto' },
      'tcg-thread': { type: 'string', default: 'auto' },
      timeout: { type: 'string', default: '900' },
      stall: { type: 'string', default: '0' },
      mem: { type: 'string', default: '3072' },
      smp: { type: 'string', default: '2' },
      cwd: { type: 'string' },
      rw: { type: 'string', multiple: true },
      env: { type: 'string', multiple: true },
      out: { type: 'string' },
      quiet: { type: 'boolean', short: 'q', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (e) {
  fail(`${e.message}\n${usage}`);
}
const opt = parsed.values;
if (opt.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const command = parsed.positionals;
if (command.length === 0) fail(`no command given\n${usage}`);
if (!['on', 'off'].includes(opt['intel-iommu'])) fail('--intel-iommu takes on or off');
if (!['auto', 'kvm', 'tcg'].includes(opt.accel)) fail('--accel takes auto, kvm or tcg');
if (!['auto', 'single', 'multi'].includes(opt['tcg-thread'])) fail('--tcg-thread takes auto, single or multi');
const timeoutMs = Number(opt.timeout) * 1000;
if (!(timeoutMs > 0)) fail('--timeout takes a number of seconds');
const stallMs = Number(opt.stall) * 1000;
if (!(stallMs >= 0)) fail('--stall takes a number of seconds');

const say = (msg) => opt.quiet || process.stderr.write(`[rig] ${msg}\n`);
const warn = (msg) => process.stderr.write(`[rig] ${msg}\n`); // failures: shown with -q too

// Runs one of the build scripts beside this file (build-kernel.sh, build-qemu.sh), which print the
// artefact's path as their last stdout line, and returns that path. Through bash, so a copy that
// lost its executable bits still works. Their progress goes to our stderr, or with -q to a log file
// whose tail is shown if the script fails (a pipe would be cut at spawnSync's maxBuffer, and a
// script that cannot be spawned at all has no output: r.stderr is null, not '').
function runBuild(script, args, what) {
  const path = join(here, script);
  if (!existsSync(path)) fail(`${what}: ${path} is missing (this copy of iommufd does not ship it)`, 1);
  let log;
  let fd = 'inherit';
  if (opt.quiet) {
    mkdirSync(join(cacheDir, 'logs'), { recursive: true });
    log = join(cacheDir, 'logs', `${basename(script, '.sh')}-${process.pid}.log`);
    fd = openSync(log, 'w');
  }
  const r = spawnSync('bash', [path, ...args], { stdio: ['ignore', 'pipe', fd], encoding: 'utf8', maxBuffer: 64 << 20 });
  if (log) closeSync(fd);
  if (r.error) fail(`${what}: cannot run bash ${path}: ${r.error.message}`, 1);
  if (r.status !== 0) {
    if (log) process.stderr.write(tail(readFileSync(log, 'utf8'), 40));
    fail(`${what} failed (${r.signal ?? `exit status ${r.status}`})${log ? `; its log: ${log}` : ''}`, 1);
  }
  if (log) rmSync(log, { force: true });
  const out = r.stdout.trim().split('\n').pop();
  if (!out || !existsSync(out)) fail(`${what}: ${script} printed no path to an existing file`, 1);
  return out;
}

// The last n lines of a text, ending in a newline ('' for an empty text).
function tail(text, n) {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.length ? `${lines.slice(-n).join('\n')}\n` : '';
}

function kernelImage(kernel) {
  if (kernel === 'newest' || /^\d+\.\d+$/.test(kernel)) return runBuild('build-kernel.sh', [kernel], `building the ${kernel} kernel`);
  if (!existsSync(kernel)) fail(`no kernel image at ${kernel}`);
  return resolve(kernel);
}

// build-kernel.sh leaves "linux-source-7.2 7.2.13-1" beside the image: report the upstream part.
function kernelRelease(image) {
  const file = join(dirname(image), 'version');
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trim().split(' ')[1]?.replace(/-[^-]*$/, '') ?? '';
}

// --qemu iopf: build (or find in the cache) the project's QEMU; PATH: use that binary as one.
function qemuBinary(which) {
  if (which === 'system') return 'qemu-system-x86_64';
  if (which !== 'iopf' && which !== 'nested') {
    if (!existsSync(which)) fail(`no QEMU binary at ${which}`);
    return resolve(which);
  }
  return runBuild('build-qemu.sh', [], 'building the iopf QEMU');
}

// With one thread per vCPU, boots with the PRI test device stopped for good at a vfio-pci reset:
// both vCPUs halted, one with an IPI (0xfb) in service whose EOI never took, its timer interrupt
// pending behind it (QEMU's own APIC dump of the stuck guest: docs/rig.md). One TCG thread for
// all vCPUs has not stopped there.
function tcgThread(iopf) {
  if (opt['tcg-thread'] !== 'auto') return opt['tcg-thread'];
  return iopf ? 'single' : 'multi';
}

function qemuArgs({ image, accel, jobDir, shares, intelIommu, iopf = false, nesting = false }) {
  const init = join(here, 'guest', 'init');
  const append = [
    'console=ttyS0', 'root=rigroot', 'rootfstype=9p', 'ro',
    'rootflags=trans=virtio,version=9p2000.L,msize=512000,cache=loose',
    `init=${init}`, 'panic=-1', `intel_iommu=${intelIommu}`,
  ].join(' ');
  const args = [
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    // intremap needs a split irqchip under KVM; TCG has no in-kernel irqchip to split.
    '-machine', accel === 'kvm' ? 'q35,kernel-irqchip=split' : 'q35',
    '-accel', accel === 'kvm' ? 'kvm' : `tcg,thread=${tcgThread(iopf)}`,
    '-cpu', accel === 'kvm' ? 'host' : 'max',
    '-smp', opt.smp, '-m', opt.mem,
    // The IOMMU must come before the devices it translates.
    // iopf: page requests (svm, the project's patch) need PASID and a device TLB; the PRI test
    // device sits on the root bus (an integrated endpoint: ATS needs no root port's ATSR match).
    // nested: x-nesting (scripts/qemu/patches/0002-intel-iommu-nesting.patch, docs/qemu-nesting-facts.md).
    '-device', `intel-iommu,intremap=on,x-scalable-mode=on,device-iotlb=on${iopf ? ',x-pasid-mode=on,svm=on' : ''}${nesting ? ',x-nesting=on' : ''}`,
    '-device', 'edu',
    ...(iopf ? ['-device', 'iommufd-pri-testdev'] : []),
    '-kernel', image, '-append', append,
    '-fsdev', 'local,id=rigroot,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device', 'virtio-9p-pci,fsdev=rigroot,mount_tag=rigroot',
    '-fsdev', `local,id=rigjob,path=${jobDir},security_model=none`,
    '-device', 'virtio-9p-pci,fsdev=rigjob,mount_tag=rigjob',
    '-serial', `file:${join(jobDir, 'serial.log')}`,
    '-chardev', 'stdio,id=out,signal=off', '-serial', 'chardev:out',
  ];
  shares.forEach((path, i) => {
    args.push('-fsdev', `local,id=rw${i},path=${path},security_model=none,multidevs=remap`,
      '-device', `virtio-9p-pci,fsdev=rw${i},mount_tag=rw${i}`);
  });
  return args;
}

function writeJob(jobDir, { cwd, shares, env, argv }) {
  const q = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;
  writeFileSync(join(jobDir, 'shares'), shares.map((p, i) => `rw${i} ${p}\n`).join(''));
  const lines = Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`);
  lines.push(`cd ${q(cwd)} || exit 126`, `exec ${argv.map(q).join(' ')}`);
  writeFileSync(join(jobDir, 'job.sh'), `${lines.join('\n')}\n`);
  rmSync(join(jobDir, 'status'), { force: true });
}

// QEMU's intel-iommu reports a DMA remapping fault it records for the guest with error_report_once
// (hw/i386/intel_iommu.c in 10.2): a line per kind, once per QEMU process. The guest sees the fault
// through its own fault registers (the kernel's "DMAR: ..." lines, in serial.log), and the PRI test
// device's ATS misses raise them on purpose (npm run demo), so these lines are kept in the job's
// qemu.log, counted, and not copied to the terminal: a translation that found nothing mapped (or a
// read-only page written) and the fault recording's bookkeeping. Every other line QEMU writes on
// stderr is copied, among them the faults that mean broken page tables (IOVA overflow, a read
// error on a table, reserved bits set).
const vtdFaultLines = [
  /^vtd_iova_to_slpte: detected slpte permission error \(/,
  /^vtd_iommu_translate: detected translation failure \(/,
  /^New fault is not recorded due to (compression of faults|Primary Fault Overflow)$/,
  /^Next Fault Recording Reg is used, new fault is not recorded, set PFO field$/,
  /^There are pending faults already, fault event is not generated$/,
  /^There are previous interrupt conditions to be serviced by software, fault event is not generated$/,
];
const isVtdFaultLine = (line) => {
  const msg = line.replace(/^[^\s:]+: /, ''); // error_report's "qemu-system-x86_64: "
  return msg !== line && vtdFaultLines.some((re) => re.test(msg));
};

// The guest kernel's hung-task detector (CONFIG_DETECT_HUNG_TASK, 60 s in the rig's kernels)
// names a task stuck in an uninterruptible wait, then prints its stack. Such a task rarely wakes
// up, and the guest would sit idle until the boot's time limit: the report is copied to our
// stderr as it comes, and a task reported twice (stuck over two minutes) ends the boot.
const hungTaskLine = /INFO: task (\S+?):(\d+) blocked for more than (\d+) seconds/;

function watchHungTasks(serialPath, onStuck, onOutput = () => {}) {
  let offset = 0;
  let partial = '';
  let copying = 0; // lines of the current report still to copy
  const seen = new Map();
  const timer = setInterval(() => {
    let text;
    try {
      const fd = openSync(serialPath, 'r');
      const buf = Buffer.alloc(1 << 16);
      let n;
      text = '';
      while ((n = readSync(fd, buf, 0, buf.length, offset)) > 0) { text += buf.toString('utf8', 0, n); offset += n; }
      closeSync(fd);
    } catch { return; }
    if (text) onOutput();
    const lines = (partial + text).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      const m = hungTaskLine.exec(line);
      if (m) {
        copying = 40;
        const key = `${m[1]}:${m[2]}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (seen.get(key) === 2) onStuck(`${key}, blocked for more than ${m[3]} s, reported twice`);
      }
      if (copying > 0) { copying--; process.stderr.write(`[rig] guest: ${line}\n`); }
    }
  }, 2000);
  return () => clearInterval(timer);
}

// Runs one boot; resolves to {status, timedOut, stalled, hungTask, vtdFaults}. status is null when
// the guest never reported one. QEMU's stderr goes whole to <jobDir>/qemu.log and, but for the VT-d
// fault lines above, to ours (all of it stays in the log when stderr is 'log'). With stallMs, the
// command's output passes through us, so that a guest silent that long (on its console too) is seen.
function boot(args, jobDir, limitMs, { output = 'inherit', stderr = 'filter', stallMs = 0 } = {}) {
  return new Promise((done) => {
    const watchOutput = stallMs > 0 && output === 'inherit';
    const child = spawn(qemuBin, args, { stdio: ['ignore', watchOutput ? 'pipe' : output, 'pipe'] });
    let last = Date.now();
    let stalled = false;
    if (watchOutput) child.stdout.on('data', (b) => { last = Date.now(); process.stdout.write(b); });
    const stallTimer = stallMs > 0 ? setInterval(() => {
      if (Date.now() - last < stallMs) return;
      stalled = true;
      child.kill('SIGKILL');
    }, 5000) : undefined;
    const log = openSync(join(jobDir, 'qemu.log'), 'w');
    let vtdFaults = 0;
    let partial = '';
    const lines = (text) => {
      const all = (partial + text).split('\n');
      partial = all.pop();
      for (const line of all) {
        if (isVtdFaultLine(line)) vtdFaults++;
        else if (stderr === 'filter') process.stderr.write(`${line}\n`);
      }
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text) => { last = Date.now(); writeSync(log, text); lines(text); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, limitMs);
    let hungTask = null;
    // Wait a little before the kill: the detector prints the other stuck tasks' stacks after it.
    const stopWatch = watchHungTasks(join(jobDir, 'serial.log'), (what) => {
      hungTask ??= what;
      setTimeout(() => child.kill('SIGKILL'), 5000);
    }, () => { last = Date.now(); });
    const forward = (sig) => child.kill(sig);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.on('error', (e) => fail(`cannot start ${qemuBin}: ${e.message}`, 1));
    // 'close', not 'exit': QEMU's stderr has been read to its end.
    child.on('close', () => {
      clearTimeout(timer);
      clearInterval(stallTimer);
      stopWatch();
      process.off('SIGINT', forward).off('SIGTERM', forward);
      if (partial) lines('\n');
      closeSync(log);
      const file = join(jobDir, 'status');
      const status = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : null;
      done({ status, timedOut, stalled, hungTask, vtdFaults });
    });
  });
}

// Nested KVM on these machines can hang at kernel entry; probe once per host boot and remember.
async function chooseAccel(image) {
  if (opt.accel !== 'auto') return opt.accel;
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const memo = join(cacheDir, `kvm-probe-${bootId}`);
    if (existsSync(memo)) return readFileSync(memo, 'utf8').trim();
    let verdict = 'tcg';
    if (existsSync('/dev/kvm')) {
      say('probing whether KVM boots a guest here (once per host boot)');
      const jobDir = mkdtempSync(join(cacheDir, 'kvm-probe-'));
      writeJob(jobDir, { cwd: '/', shares: [], env: {}, argv: ['true'] });
      const r = await boot(qemuArgs({ image, accel: 'kvm', jobDir, shares: [], intelIommu: 'on' }), jobDir, 15000, { output: 'ignore', stderr: 'log' });
      if (r.status === 0) verdict = 'kvm';
      rmSync(jobDir, { recursive: true, force: true });
    }
    writeFileSync(memo, verdict);
    return verdict;
  } catch {
    return 'tcg';
  }
}

mkdirSync(cacheDir, { recursive: true });
const iopf = opt.qemu !== 'system';
const nesting = opt.qemu === 'nested';
const qemuBin = qemuBinary(opt.qemu);
const image = kernelImage(opt.kernel);
const accel = await chooseAccel(image);
const cwd = resolve(opt.cwd ?? process.cwd());
const shares = [...new Set((opt.rw ?? [cwd]).map((p) => resolve(p)))];
// Job dirs default to the cache; keep the newest 20 so serial logs of recent runs stay at hand.
const runsDir = join(cacheDir, 'runs');
mkdirSync(runsDir, { recursive: true });
readdirSync(runsDir).map((n) => join(runsDir, n)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  .slice(19).forEach((d) => rmSync(d, { recursive: true, force: true }));
const jobDir = resolve(opt.out ?? mkdtempSync(join(cacheDir, 'runs', 'job-')));
mkdirSync(jobDir, { recursive: true });

const env = {
  PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
  HOME: '/tmp',
  TERM: process.env.TERM ?? 'dumb',
  IOMMUFD_RIG: '1',
  IOMMUFD_RIG_KERNEL: opt.kernel,
  IOMMUFD_RIG_KERNEL_RELEASE: kernelRelease(image),
  IOMMUFD_RIG_KERNEL_DIR: dirname(resolve(image)),
  IOMMUFD_RIG_INTEL_IOMMU: opt['intel-iommu'],
  IOMMUFD_RIG_QEMU: nesting ? 'nested' : iopf ? 'iopf' : 'system',
};
for (const k of ['CI', 'FORCE_COLOR', 'NO_COLOR', 'NODE_OPTIONS', 'LANG']) if (process.env[k] !== undefined) env[k] = process.env[k];
// The command writes into a pipe; let it colour its output when ours goes to a terminal.
if (env.FORCE_COLOR === undefined && env.NO_COLOR === undefined && process.stdout.isTTY) env.FORCE_COLOR = '1';
for (const kv of opt.env ?? []) {
  const i = kv.indexOf('=');
  if (i < 1) fail(`--env takes NAME=VALUE, got ${kv}`);
  env[kv.slice(0, i)] = kv.slice(i + 1);
}
writeJob(jobDir, { cwd, shares, env, argv: command });

say(`booting ${image} (${accel.toUpperCase()}, intel_iommu=${opt['intel-iommu']}${iopf ? `, ${qemuBin}` : ''}); serial log: ${join(jobDir, 'serial.log')}`);
const started = Date.now();
const { status, timedOut, stalled, hungTask, vtdFaults } = await boot(qemuArgs({ image, accel, jobDir, shares, intelIommu: opt['intel-iommu'], iopf, nesting }), jobDir, timeoutMs, { stallMs });
const secs = ((Date.now() - started) / 1000).toFixed(1);
const exitCode = timedOut || stalled ? 124 : status ?? 125;
// The count of QEMU's VT-d fault lines kept out of the terminal: a progress line, and with -q
// still shown when the run fails (the faults may be why).
if (vtdFaults > 0 && (!opt.quiet || exitCode !== 0)) {
  warn(`${vtdFaults} VT-d fault line${vtdFaults === 1 ? '' : 's'} from QEMU (the guest's DMA faults, e.g. ATS misses; the demo causes them on purpose) in ${join(jobDir, 'qemu.log')}`);
}
if (timedOut) {
  warn(`timed out after ${opt.timeout} s; serial log: ${join(jobDir, 'serial.log')}`);
  process.exit(124);
}
if (stalled) {
  warn(`stopped the boot after ${secs} s: nothing printed by the command or the guest kernel for ${opt.stall} s (a guest stuck with every vCPU halted looks so: docs/rig.md, "A lost interrupt under multi-threaded TCG"); serial log: ${join(jobDir, 'serial.log')}`);
  process.exit(124);
}
const serial = existsSync(join(jobDir, 'serial.log')) ? readFileSync(join(jobDir, 'serial.log'), 'utf8') : '';
if (hungTask && status !== null) warn(`the guest kernel reported a task stuck (${hungTask}), and the command still finished; serial log: ${join(jobDir, 'serial.log')}`);
if (hungTask && status === null) {
  warn(`stopped the boot after ${secs} s: the guest kernel reports a task stuck (${hungTask}); its stack is above and in ${join(jobDir, 'serial.log')}, QEMU's log: ${join(jobDir, 'qemu.log')}`);
  process.exit(125);
}
if (status === null) {
  process.stderr.write(tail(serial, 30));
  warn(`the guest stopped without reporting a status (after ${secs} s); serial log: ${join(jobDir, 'serial.log')}, QEMU's log: ${join(jobDir, 'qemu.log')}`);
  process.exit(125);
}
const up = /rig: userspace up at ([\d.]+) s/.exec(serial);
say(`guest exited with status ${status} after ${secs} s${up ? ` (userspace reached ${up[1]} s after kernel start)` : ''}`);
process.exit(status);
