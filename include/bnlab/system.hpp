#pragma once
// What the code runs on, for every benchmark and log to print: the CPU (model, logical cores),
// the instruction set the kernels chose at run time, and the OpenMP thread count.

#include <string>

namespace bnlab {

std::string cpu_model();               // "AMD EPYC 9B45", from /proc/cpuinfo; "unknown" elsewhere
std::string kernel_instruction_set();  // "avx512f", "avx2" or "x86-64"
int thread_count();                    // omp_get_max_threads()
std::string system_description();      // one line with all of the above
// How training uses the threads (FitOptions::thread_probe_interval's default), for its logs:
// "training threads: 2 (fixed)" or "training threads: up to 2, one where timed faster (every 256 steps)".
std::string training_threads_description();

}  // namespace bnlab
