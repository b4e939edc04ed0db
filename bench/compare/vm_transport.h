// The comparison over real virtio-serial: the test guest (tests/vm/guest)
// with qemu-ga added, both agents on ports of one controller, and a bare
// port beside them for the transport's own round trip and throughput.
#pragma once

#include <string>
#include <vector>

#include "measure.h"
#include "vm/test_vm.h"

namespace qtx::bench {

// Appends the VM's metrics (transport "vm", or "vm-arm64" for the arm64
// guest: Debian's arm64 qemu-ga beside the cross-built qtx-agent) and plot
// series; false (having said why on stderr) when the VM cannot run here.
// *accel receives how the guest runs.
bool run_vm(testing::GuestArch arch, const Plan& plan, const std::string& dir, std::vector<Metric>* out,
            std::vector<Series>* chunk_plot, std::vector<Series>* window_plot, std::string* accel);

}  // namespace qtx::bench
