{
  "targets": [
    {
      "target_name": "iommufd",
      "sources": [
        "native/addon.cc",
        "native/iommufd.cc",
        "native/ioas.cc",
        "native/ioas_handle.cc",
        "native/hwpt.cc",
        "native/fault_queue.cc",
        "native/event_pump.cc",
        "native/serve_loop.cc",
        "native/map_step.cc",
        "native/viommu.cc",
        "native/veventq.cc",
        "native/selftest.cc",
        "native/vfio_device.cc",
        "native/probe.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
