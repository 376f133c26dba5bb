// mobilekd native runner: load a .pte with executorch::extension::Module (as a phone app does),
// feed inputs read from raw files, run warm-up + timed runs, print one JSON object on stdout.
//
// Usage: mkd_runner --model M.pte --threads N --warmup W --min-runs R --min-seconds S
//                   --max-seconds T [--output-dir D] --input DTYPE:D0,D1,...:PATH [...]
// DTYPE is one of float32 float16 int64 int32 int8 uint8 bool. Times are printed per run (ms)
// so the Python side computes percentiles with the same code as the other runtimes.
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

// libexecutorch_threadpool.so exports these, but the wheel does not ship threadpool.h. Member
// functions are non-virtual, so declaring the two we call is enough to link against them
// (the return type is not part of the mangled name; we ignore it).
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  void _unsafe_reset_threadpool(uint32_t num_threads);
  size_t get_thread_count() const;
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

using executorch::aten::ScalarType;
using executorch::extension::TensorPtr;
using executorch::extension::module::Module;
using executorch::runtime::EValue;
using Clock = std::chrono::steady_clock;

namespace {

struct InputSpec {
  ScalarType dtype;
  std::vector<executorch::aten::SizesType> shape;
  std::vector<char> data;
};

[[noreturn]] void die(const std::string& msg) {
  std::cerr << "mkd_runner: " << msg << std::endl;
  std::exit(2);
}

bool parse_dtype(const std::string& s, ScalarType* out, size_t* elem) {
  struct Entry { const char* name; ScalarType t; size_t size; };
  static const Entry table[] = {
      {"float32", ScalarType::Float, 4}, {"float16", ScalarType::Half, 2},
      {"int64", ScalarType::Long, 8},    {"int32", ScalarType::Int, 4},
      {"int8", ScalarType::Char, 1},     {"uint8", ScalarType::Byte, 1},
      {"bool", ScalarType::Bool, 1}};
  for (const auto& e : table) {
    if (s == e.name) { *out = e.t; *elem = e.size; return true; }
  }
  return false;
}

const char* dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Float: return "float32";
    case ScalarType::Half: return "float16";
    case ScalarType::Long: return "int64";
    case ScalarType::Int: return "int32";
    case ScalarType::Char: return "int8";
    case ScalarType::Byte: return "uint8";
    case ScalarType::Bool: return "bool";
    default: return "other";
  }
}

InputSpec parse_input(const std::string& arg) {
  size_t a = arg.find(':'), b = arg.find(':', a + 1);
  if (a == std::string::npos || b == std::string::npos) die("bad --input " + arg);
  InputSpec spec;
  size_t elem = 0;
  if (!parse_dtype(arg.substr(0, a), &spec.dtype, &elem)) die("bad dtype in " + arg);
  std::stringstream dims(arg.substr(a + 1, b - a - 1));
  std::string d;
  size_t numel = 1;
  while (std::getline(dims, d, ',')) {
    spec.shape.push_back(std::stoi(d));
    numel *= spec.shape.back();
  }
  std::ifstream f(arg.substr(b + 1), std::ios::binary);
  if (!f) die("cannot open input file " + arg.substr(b + 1));
  spec.data.resize(numel * elem);
  f.read(spec.data.data(), spec.data.size());
  if (static_cast<size_t>(f.gcount()) != spec.data.size()) die("short input file " + arg);
  return spec;
}

// Resident set size (kB) from /proc/self/status: VmRSS now, VmHWM the peak since the last reset.
long status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  size_t n = std::strlen(key);
  while (std::getline(f, line)) {
    if (line.compare(0, n, key) == 0) return std::atol(line.c_str() + n + 1);
  }
  return -1;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, output_dir;
  int threads = 1, warmup = 10, min_runs = 50;
  double min_seconds = 1.0, max_seconds = 10.0;
  std::vector<InputSpec> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) die("missing value for " + k);
    std::string v = argv[++i];
    if (k == "--model") model = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--warmup") warmup = std::stoi(v);
    else if (k == "--min-runs") min_runs = std::stoi(v);
    else if (k == "--min-seconds") min_seconds = std::stod(v);
    else if (k == "--max-seconds") max_seconds = std::stod(v);
    else if (k == "--output-dir") output_dir = v;
    else if (k == "--input") inputs.push_back(parse_input(v));
    else die("unknown option " + k);
  }
  if (model.empty()) die("--model is required");

  // Reset the peak RSS to the current RSS (Linux >= 4.0), so VmHWM later is the peak of load+runs.
  { std::ofstream cr("/proc/self/clear_refs"); if (cr) cr << "5"; }
  long base_kb = status_kb("VmRSS");

  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (pool != nullptr) pool->_unsafe_reset_threadpool(static_cast<uint32_t>(threads));
  long pool_threads = pool != nullptr ? static_cast<long>(pool->get_thread_count()) : -1;

  std::vector<TensorPtr> tensors;
  std::vector<EValue> values;
  for (auto& in : inputs) {
    tensors.push_back(executorch::extension::from_blob(in.data.data(), in.shape, in.dtype));
    values.emplace_back(*tensors.back());
  }

  auto t0 = Clock::now();
  Module module(model, Module::LoadMode::Mmap);
  auto err = module.load_forward();
  if (err != executorch::runtime::Error::Ok) die("load_forward failed, error code " + std::to_string(int(err)));
  auto first = module.forward(values);
  if (!first.ok()) die("forward failed, error code " + std::to_string(int(first.error())));
  double cold_ms = ms_since(t0);

  if (!output_dir.empty()) {
    std::ostringstream meta;
    meta << "[";
    for (size_t i = 0; i < first->size(); ++i) {
      const EValue& ev = (*first)[i];
      if (!ev.isTensor()) die("output " + std::to_string(i) + " is not a tensor");
      const auto& t = ev.toTensor();
      std::ofstream of(output_dir + "/output_" + std::to_string(i) + ".bin", std::ios::binary);
      of.write(static_cast<const char*>(t.const_data_ptr()), t.nbytes());
      meta << (i ? "," : "") << "{\"dtype\":\"" << dtype_name(t.scalar_type()) << "\",\"shape\":[";
      for (size_t d = 0; d < t.sizes().size(); ++d) meta << (d ? "," : "") << t.sizes()[d];
      meta << "]}";
    }
    meta << "]";
    std::ofstream(output_dir + "/outputs.json") << meta.str();
  }

  for (int i = 0; i < warmup; ++i) {
    if (!module.forward(values).ok()) die("forward failed during warm-up");
  }
  std::vector<double> times;
  auto start = Clock::now();
  for (;;) {
    double elapsed = ms_since(start) / 1000.0;
    bool enough = static_cast<int>(times.size()) >= min_runs && elapsed >= min_seconds;
    if (enough || (elapsed >= max_seconds && !times.empty())) break;
    auto r0 = Clock::now();
    auto out = module.forward(values);
    double ms = ms_since(r0);
    if (!out.ok()) die("forward failed during timed runs");
    times.push_back(ms);
  }
  long peak_kb = status_kb("VmHWM");

  std::printf("{\"cold_start_ms\": %.6f, \"baseline_rss_kb\": %ld, \"peak_rss_kb\": %ld, "
              "\"threadpool_threads\": %ld, \"times_ms\": [",
              cold_ms, base_kb, peak_kb, pool_threads);
  for (size_t i = 0; i < times.size(); ++i) std::printf("%s%.6f", i ? ", " : "", times[i]);
  std::printf("]}\n");
  return 0;
}
