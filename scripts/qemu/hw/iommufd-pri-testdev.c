/*
 * iommufd-pri-testdev: a PCIe DMA engine that faults like real hardware.
 *
 * The iommufd-node project's test device (https://www.npmjs.com/package/iommufd, issue 14). It
 * has PASID, ATS and PRI capabilities and copies between its own memory (BAR2) and I/O virtual
 * addresses. Every page is translated through ATS right before it is touched; a page that is not
 * present, or lacks the permission, makes the device send a page request (PRI) to the IOMMU and
 * park the job until the page group response arrives. SUCCESS retries the page (once: a page
 * still missing after a SUCCESS ends the job), INVALID or FAILURE ends the job with an error.
 * A translation request the IOMMU fails outright (-EFAULT from pci_ats_request_translation: an
 * Unsupported Request or Completer Abort completion, e.g. a second-stage fault of a nested walk
 * with the project's x-nesting intel-iommu) ends the job at once, without a page request.
 * Every wait is bounded by TIMEOUT_MS, so a lost response fails a test instead of hanging it.
 *
 * Registers (BAR0, 4 KiB, 32-bit accesses; 64-bit registers also take 64-bit accesses):
 *   0x000 ID          0x11e9 | version << 16                                  (ro)
 *   0x004 SLOTS       number of job slots                                     (ro)
 *   0x008 IRQ_STATUS  bit n: slot n finished (done or error); write 1s to ack (rw1c)
 *   0x00c TIMEOUT_MS  bound on each wait for a response or a credit (default 5000)
 *   0x010 PR_SENT     page requests sent, all slots                           (ro)
 *   0x014 PR_RESP     page group responses seen, all slots                    (ro)
 *   0x018 OUTSTANDING page requests awaiting a response now                   (ro)
 *   0x01c MAX_OUTSTANDING the most ever outstanding at once (write 0 to reset)
 *   0x020 PRQ_FULL    page requests the IOMMU refused with -ENOSPC (retried)  (ro)
 *   0x024 STALE       responses that matched no waiting job                   (ro)
 *   0x028 PRI_ALLOC   outstanding requests the OS allocated (PRI capability)  (ro)
 *   0x100 + 0x40 * n  slot n:
 *     +0x00 IOVA (64)  +0x08 BUF_OFFSET (into BAR2)  +0x0c LEN
 *     +0x10 FLAGS  bit 0 WRITE (device memory -> IOVA; else IOVA -> device memory)
 *                  bit 1 GROUP (on a miss, request every missing page of the job's remaining
 *                        range in one page request group, last page flagged, up to 16 pages
 *                        and the PRI allocation; the group waits until all of it fits in the
 *                        allocation; else one page per group)
 *     +0x14 PASID (sent with every request; 0 = the RID's domain, PASID 0 on the wire)
 *     +0x18 GO (write 1 to start; ignored while the slot runs)
 *     +0x1c STATUS  0 idle, 1 running, 2 waiting for a response, 3 done, 4 error
 *     +0x20 ERROR   0, or: 1 response INVALID, 2 response FAILURE, 3 page still missing after
 *                   SUCCESS, 4 timeout, 5 bad job, 6 DMA error, 7 PRI/ATS/PASID off or reset,
 *                   8 the IOMMU failed the ATS translation request (no page request sent),
 *                   0x100 | -errno: the IOMMU refused the request (pci_pri_request_page)
 *     +0x24 PR_SENT  +0x28 PR_RESP  +0x2c DONE (bytes copied)
 *     +0x30 FAULT_ADDR (64, last page requested; with ERROR 8 the page that failed)
 *     +0x38 RESP_CODE (last: 0 success, 1 invalid, 2 failure)  +0x3c PRGI (last used)
 * BAR2: 256 KiB of device memory.
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/units.h"
#include "qemu/timer.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qom/object.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "hw/pci/msi.h"
#include "hw/qdev-properties.h"
#include "system/dma.h"

#define TYPE_IOMMUFD_PRI_TESTDEV "iommufd-pri-testdev"
OBJECT_DECLARE_SIMPLE_TYPE(PriTestState, IOMMUFD_PRI_TESTDEV)

#define PTD_VERSION 1
#define PTD_SLOTS 8
#define PTD_MEM_SIZE (256 * KiB)
#define PTD_PAGE 4096ULL
#define PTD_GROUP_MAX 16 /* pages in one page request group */
#define PTD_BACKOFF_NS (200 * SCALE_US)

#define PTD_ATS_OFF 0x100
#define PTD_PASID_OFF 0x108
#define PTD_PRI_OFF 0x110

enum { ST_IDLE, ST_RUNNING, ST_WAITING, ST_DONE, ST_ERROR };
enum { E_NONE, E_INVALID, E_FAILURE, E_STILL_MISSING, E_TIMEOUT, E_BAD_JOB, E_DMA, E_OFF,
       E_XLATE };

typedef struct PtdSlot {
    uint64_t iova;
    uint32_t buf_offset, len, flags, pasid;
    uint32_t status, error, pr_sent, pr_resp, done;
    uint64_t fault_addr;
    uint32_t resp_code, prgi;
    /* engine state */
    uint32_t gen;          /* bumped per request group: stale responses do not match */
    uint32_t in_flight;    /* pages of the group awaiting the response (credits held) */
    bool retried;          /* the current page was already answered SUCCESS once */
    bool responded;        /* a response arrived; the BH acts on it */
    uint32_t response;
    int64_t deadline;      /* virtual ns; 0 = no wait */
} PtdSlot;

struct PriTestState {
    PCIDevice parent_obj;
    MemoryRegion regs, mem_bar;
    uint8_t *mem;
    QEMUBH *bh;
    QEMUTimer timer;
    IOMMUPRINotifier notifier;
    DECLARE_BITMAP(notified_pasids, 256);
    PtdSlot slot[PTD_SLOTS];
    uint32_t irq_status, timeout_ms, pr_sent, pr_resp, outstanding, max_outstanding;
    uint32_t prq_full, stale;
    uint32_t pri_max; /* property: Outstanding Page Request Capacity */
};

static void ptd_update_irq(PriTestState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (msi_enabled(pdev)) {
        if (s->irq_status) {
            msi_notify(pdev, 0);
        }
    } else {
        pci_set_irq(pdev, s->irq_status != 0);
    }
}

static void ptd_finish(PriTestState *s, int n, uint32_t status, uint32_t error)
{
    PtdSlot *j = &s->slot[n];

    s->outstanding -= j->in_flight;
    j->in_flight = 0;
    j->status = status;
    j->error = error;
    j->deadline = 0;
    s->irq_status |= 1u << n;
    ptd_update_irq(s);
}

/*
 * Translates one page through ATS: 1 if the access is allowed (the host address in *out), 0 if
 * the page is missing or lacks the permission (a page request may fix it), -1 if the IOMMU
 * failed the translation request itself (no page request can fix it).
 */
static int ptd_translate(PriTestState *s, PtdSlot *j, uint64_t page, bool write,
                         hwaddr *out)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    IOMMUTLBEntry e;
    uint32_t errs = 0;
    ssize_t n = pci_ats_request_translation(pdev, j->pasid, false, false, page, PTD_PAGE,
                                            !write, &e, 1, &errs);
    IOMMUAccessFlags need = write ? IOMMU_RW : IOMMU_RO;

    if (n == -EFAULT) {
        return -1;
    }
    if (n != 1 || errs || (e.perm & need) != need) {
        return 0;
    }
    *out = (e.translated_addr & ~e.addr_mask) | (page & e.addr_mask);
    return 1;
}

/* Sends the page request group for the miss at j's current position; false: try later. */
static bool ptd_request(PriTestState *s, int n, uint64_t first_page, int *err)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    PtdSlot *j = &s->slot[n];
    bool write = j->flags & 1;
    uint64_t pages[PTD_GROUP_MAX];
    uint32_t count = 0, credit, alloc = pcie_pri_get_req_alloc(pdev);
    uint64_t end = j->iova + j->len, page;
    hwaddr unused;
    uint16_t prgi;

    pages[count++] = first_page;
    if (j->flags & 2) {
        for (page = first_page + PTD_PAGE; page < end && count < PTD_GROUP_MAX &&
             count < alloc; page += PTD_PAGE) {
            if (ptd_translate(s, j, page, write, &unused) == 0) {
                pages[count++] = page;
            }
        }
    }
    /* A group goes out whole: wait until the allocation has room for all of it. */
    credit = alloc > s->outstanding ? alloc - s->outstanding : 0;
    if (credit < count) {
        return false;
    }
    if (!test_bit(j->pasid & 0xff, s->notified_pasids)) {
        *err = pci_pri_register_notifier(pdev, j->pasid, &s->notifier);
        if (*err) {
            return true;
        }
        set_bit(j->pasid & 0xff, s->notified_pasids);
    }
    j->gen++;
    prgi = (n | (j->gen << 3)) & PCI_PRI_PRGI_MASK;
    for (uint32_t i = 0; i < count; i++) {
        *err = pci_pri_request_page(pdev, j->pasid, false, false, pages[i], i == count - 1,
                                    prgi, !write, write);
        if (*err == -ENOSPC && i == 0) {
            s->prq_full++;
            j->gen--;
            *err = 0;
            return false; /* the IOMMU's queue is full: back off and retry */
        }
        if (*err) {
            /* A group cut short never gets a response: count it as failed now. */
            s->outstanding += i;
            j->in_flight = i;
            return true;
        }
    }
    j->in_flight = count;
    s->outstanding += count;
    s->max_outstanding = MAX(s->max_outstanding, s->outstanding);
    j->pr_sent += count;
    s->pr_sent += count;
    j->fault_addr = first_page;
    j->prgi = prgi;
    j->responded = false;
    j->status = ST_WAITING;
    return true;
}

/* Runs slot n until it finishes or must wait; returns the time it wants to be woken at. */
static int64_t ptd_step(PriTestState *s, int n, int64_t now)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    PtdSlot *j = &s->slot[n];
    bool write = j->flags & 1;

    if (j->status == ST_WAITING) {
        if (!j->responded) {
            if (now >= j->deadline) {
                ptd_finish(s, n, ST_ERROR, E_TIMEOUT);
                return 0;
            }
            return j->deadline;
        }
        j->responded = false;
        s->outstanding -= j->in_flight;
        j->in_flight = 0;
        j->resp_code = j->response;
        if (j->response != IOMMU_PRI_RESP_SUCCESS) {
            ptd_finish(s, n, ST_ERROR,
                       j->response == IOMMU_PRI_RESP_INVALID_REQUEST ? E_INVALID : E_FAILURE);
            return 0;
        }
        j->retried = true;
        j->status = ST_RUNNING;
        j->deadline = 0;
    }
    if (!pcie_pri_enabled(pdev) || !pcie_ats_enabled(pdev) ||
        (j->pasid && !pcie_pasid_enabled(pdev))) {
        ptd_finish(s, n, ST_ERROR, E_OFF);
        return 0;
    }
    while (j->done < j->len) {
        uint64_t addr = j->iova + j->done, page = addr & ~(PTD_PAGE - 1);
        uint32_t chunk = MIN(j->len - j->done, PTD_PAGE - (addr - page));
        hwaddr pa;
        int err = 0, t = ptd_translate(s, j, page, write, &pa);

        if (t < 0) {
            j->fault_addr = page;
            ptd_finish(s, n, ST_ERROR, E_XLATE);
            return 0;
        }
        if (t > 0) {
            MemTxResult r = dma_memory_rw(&address_space_memory, pa + (addr - page),
                                          s->mem + j->buf_offset + j->done, chunk,
                                          write ? DMA_DIRECTION_FROM_DEVICE
                                                : DMA_DIRECTION_TO_DEVICE,
                                          MEMTXATTRS_UNSPECIFIED);
            if (r != MEMTX_OK) {
                ptd_finish(s, n, ST_ERROR, E_DMA);
                return 0;
            }
            j->done += chunk;
            j->retried = false;
            continue;
        }
        if (j->retried) {
            ptd_finish(s, n, ST_ERROR, E_STILL_MISSING);
            return 0;
        }
        if (!j->deadline) {
            j->deadline = now + (int64_t)s->timeout_ms * SCALE_MS;
        }
        if (!ptd_request(s, n, page, &err)) {
            /* No credit or a full queue: retry soon, within the same deadline. */
            if (now >= j->deadline) {
                ptd_finish(s, n, ST_ERROR, E_TIMEOUT);
                return 0;
            }
            return MIN(now + PTD_BACKOFF_NS, j->deadline);
        }
        if (err) {
            ptd_finish(s, n, ST_ERROR, 0x100 | (uint32_t)(-err & 0xff));
            return 0;
        }
        j->deadline = now + (int64_t)s->timeout_ms * SCALE_MS;
        return j->deadline;
    }
    ptd_finish(s, n, ST_DONE, E_NONE);
    return 0;
}

static void ptd_run(void *opaque)
{
    PriTestState *s = opaque;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), wake = INT64_MAX;

    for (int n = 0; n < PTD_SLOTS; n++) {
        if (s->slot[n].status == ST_RUNNING || s->slot[n].status == ST_WAITING) {
            int64_t t = ptd_step(s, n, now);
            if (t) {
                wake = MIN(wake, t);
            }
        }
    }
    if (wake != INT64_MAX) {
        timer_mod(&s->timer, wake);
    } else {
        timer_del(&s->timer);
    }
}

/* Called from the IOMMU's invalidation queue (a vCPU's register write): record, never DMA. */
static void ptd_pri_notify(IOMMUPRINotifier *notifier, IOMMUPRIResponse *resp)
{
    PriTestState *s = container_of(notifier, PriTestState, notifier);
    int n = resp->prgi & (PTD_SLOTS - 1);
    PtdSlot *j = &s->slot[n];

    if (j->status != ST_WAITING || j->prgi != resp->prgi || j->responded) {
        s->stale++;
        return;
    }
    j->responded = true;
    j->response = resp->response_code;
    j->pr_resp++;
    s->pr_resp++;
    qemu_bh_schedule(s->bh);
}

static void ptd_timer(void *opaque)
{
    ptd_run(opaque);
}

static void ptd_cancel_all(PriTestState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    int p;

    for (int n = 0; n < PTD_SLOTS; n++) {
        if (s->slot[n].status == ST_RUNNING || s->slot[n].status == ST_WAITING) {
            ptd_finish(s, n, ST_ERROR, E_OFF);
        }
    }
    s->outstanding = 0;
    while ((p = find_first_bit(s->notified_pasids, 256)) < 256) {
        pci_pri_unregister_notifier(pdev, p);
        clear_bit(p, s->notified_pasids);
    }
    timer_del(&s->timer);
}

static uint64_t ptd_slot_read(PtdSlot *j, hwaddr off)
{
    switch (off) {
    case 0x00: return j->iova;
    case 0x04: return j->iova >> 32;
    case 0x08: return j->buf_offset;
    case 0x0c: return j->len;
    case 0x10: return j->flags;
    case 0x14: return j->pasid;
    case 0x1c: return j->status;
    case 0x20: return j->error;
    case 0x24: return j->pr_sent;
    case 0x28: return j->pr_resp;
    case 0x2c: return j->done;
    case 0x30: return j->fault_addr;
    case 0x34: return j->fault_addr >> 32;
    case 0x38: return j->resp_code;
    case 0x3c: return j->prgi;
    }
    return 0;
}

static uint64_t ptd_regs_read(void *opaque, hwaddr addr, unsigned size)
{
    PriTestState *s = opaque;
    uint64_t v = 0;

    if (addr >= 0x100 && addr < 0x100 + 0x40 * PTD_SLOTS) {
        PtdSlot *j = &s->slot[(addr - 0x100) / 0x40];
        hwaddr off = (addr - 0x100) % 0x40;
        v = ptd_slot_read(j, off);
        if (size == 8 && (off == 0x00 || off == 0x30)) {
            v = off ? j->fault_addr : j->iova;
        }
        return size == 8 ? v : (uint32_t)v;
    }
    switch (addr) {
    case 0x000: v = 0x11e9 | (PTD_VERSION << 16); break;
    case 0x004: v = PTD_SLOTS; break;
    case 0x008: v = s->irq_status; break;
    case 0x00c: v = s->timeout_ms; break;
    case 0x010: v = s->pr_sent; break;
    case 0x014: v = s->pr_resp; break;
    case 0x018: v = s->outstanding; break;
    case 0x01c: v = s->max_outstanding; break;
    case 0x020: v = s->prq_full; break;
    case 0x024: v = s->stale; break;
    case 0x028: v = pcie_pri_get_req_alloc(PCI_DEVICE(s)); break;
    }
    return v;
}

static void ptd_slot_write(PriTestState *s, int n, hwaddr off, uint64_t val, unsigned size)
{
    PtdSlot *j = &s->slot[n];
    bool busy = j->status == ST_RUNNING || j->status == ST_WAITING;

    if (busy) {
        qemu_log_mask(LOG_GUEST_ERROR, "iommufd-pri-testdev: slot %d is busy\n", n);
        return;
    }
    switch (off) {
    case 0x00:
        j->iova = size == 8 ? val : deposit64(j->iova, 0, 32, val);
        break;
    case 0x04: j->iova = deposit64(j->iova, 32, 32, val); break;
    case 0x08: j->buf_offset = val; break;
    case 0x0c: j->len = val; break;
    case 0x10: j->flags = val & 3; break;
    case 0x14: j->pasid = val; break;
    case 0x18:
        if (!(val & 1)) {
            break;
        }
        j->error = E_NONE;
        j->done = j->pr_sent = j->pr_resp = j->resp_code = 0;
        j->fault_addr = 0;
        j->retried = j->responded = false;
        j->deadline = 0;
        s->irq_status &= ~(1u << n);
        if (!j->len || j->buf_offset > PTD_MEM_SIZE || j->len > PTD_MEM_SIZE - j->buf_offset ||
            j->pasid > 0xff) {
            ptd_finish(s, n, ST_ERROR, E_BAD_JOB);
            break;
        }
        j->status = ST_RUNNING;
        qemu_bh_schedule(s->bh);
        break;
    }
}

static void ptd_regs_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    PriTestState *s = opaque;

    if (addr >= 0x100 && addr < 0x100 + 0x40 * PTD_SLOTS) {
        ptd_slot_write(s, (addr - 0x100) / 0x40, (addr - 0x100) % 0x40, val, size);
        return;
    }
    switch (addr) {
    case 0x008:
        s->irq_status &= ~(uint32_t)val;
        ptd_update_irq(s);
        break;
    case 0x00c: s->timeout_ms = val ? val : 1; break;
    case 0x01c: s->max_outstanding = val; break;
    }
}

static const MemoryRegionOps ptd_regs_ops = {
    .read = ptd_regs_read,
    .write = ptd_regs_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 8 },
    .impl = { .min_access_size = 4, .max_access_size = 8 },
};

static uint64_t ptd_mem_read(void *opaque, hwaddr addr, unsigned size)
{
    PriTestState *s = opaque;
    return ldn_le_p(s->mem + addr, size);
}

static void ptd_mem_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    PriTestState *s = opaque;
    stn_le_p(s->mem + addr, size, val);
}

static const MemoryRegionOps ptd_mem_ops = {
    .read = ptd_mem_read,
    .write = ptd_mem_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

static void ptd_config_write(PCIDevice *pdev, uint32_t addr, uint32_t val, int len)
{
    PriTestState *s = IOMMUFD_PRI_TESTDEV(pdev);

    pci_default_write_config(pdev, addr, val, len);
    pcie_cap_flr_write_config(pdev, addr, val, len);
    /* PRI, ATS or PASID turned off under a running job: the job cannot finish. */
    if (ranges_overlap(addr, len, PTD_ATS_OFF, 0x20) && !pcie_pri_enabled(pdev)) {
        ptd_cancel_all(s);
    }
}

static void ptd_reset(DeviceState *dev)
{
    PriTestState *s = IOMMUFD_PRI_TESTDEV(dev);

    ptd_cancel_all(s);
    memset(s->slot, 0, sizeof(s->slot));
    s->irq_status = 0;
    s->timeout_ms = 5000;
    s->outstanding = s->max_outstanding = 0;
}

static void ptd_realize(PCIDevice *pdev, Error **errp)
{
    PriTestState *s = IOMMUFD_PRI_TESTDEV(pdev);

    pci_config_set_interrupt_pin(pdev->config, 1);
    if (pcie_endpoint_cap_init(pdev, 0) < 0) {
        error_setg(errp, "iommufd-pri-testdev: cannot add the PCIe capability");
        return;
    }
    pcie_cap_flr_init(pdev);
    if (msi_init(pdev, 0, 1, true, false, errp)) {
        return;
    }
    pcie_ats_init(pdev, PTD_ATS_OFF, true);
    pcie_pasid_init(pdev, PTD_PASID_OFF, 8, false, false);
    /* PRG Response PASID Required: Linux refuses PRI with PASID enabled without it. */
    pcie_pri_init(pdev, PTD_PRI_OFF, s->pri_max, true);

    s->mem = g_malloc0(PTD_MEM_SIZE);
    s->notifier.notify = ptd_pri_notify;
    s->bh = qemu_bh_new_guarded(ptd_run, s, &DEVICE(pdev)->mem_reentrancy_guard);
    timer_init_ns(&s->timer, QEMU_CLOCK_VIRTUAL, ptd_timer, s);
    s->timeout_ms = 5000;
    memory_region_init_io(&s->regs, OBJECT(s), &ptd_regs_ops, s, "iommufd-pri-testdev-regs",
                          4 * KiB);
    memory_region_init_io(&s->mem_bar, OBJECT(s), &ptd_mem_ops, s, "iommufd-pri-testdev-mem",
                          PTD_MEM_SIZE);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->regs);
    pci_register_bar(pdev, 2, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->mem_bar);
}

static void ptd_exit(PCIDevice *pdev)
{
    PriTestState *s = IOMMUFD_PRI_TESTDEV(pdev);

    ptd_cancel_all(s);
    timer_del(&s->timer);
    qemu_bh_delete(s->bh);
    msi_uninit(pdev);
    g_free(s->mem);
}

static const Property ptd_properties[] = {
    DEFINE_PROP_UINT32("pri-max-requests", PriTestState, pri_max, 4),
};

static void ptd_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = ptd_realize;
    k->exit = ptd_exit;
    k->config_write = ptd_config_write;
    k->vendor_id = PCI_VENDOR_ID_QEMU;
    k->device_id = 0x11e9;
    k->revision = PTD_VERSION;
    k->class_id = PCI_CLASS_OTHERS;
    dc->desc = "iommufd-node PRI test device (PASID, ATS, PRI DMA engine)";
    device_class_set_legacy_reset(dc, ptd_reset);
    device_class_set_props(dc, ptd_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo ptd_types[] = {
    {
        .name = TYPE_IOMMUFD_PRI_TESTDEV,
        .parent = TYPE_PCI_DEVICE,
        .instance_size = sizeof(PriTestState),
        .class_init = ptd_class_init,
        .interfaces = (const InterfaceInfo[]) {
            { INTERFACE_PCIE_DEVICE },
            { },
        },
    },
};

DEFINE_TYPES(ptd_types)
