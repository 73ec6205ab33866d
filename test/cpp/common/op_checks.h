// Shared by the CPU op tests (cpu_ops_test, train_ops_test): the worst error
// of each check over many cases, reported once, and "does f throw a
// focus::Error".
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "common/testing.h"
#include "core/error.h"
#include "cpu/isa.h"

namespace ftest {

// Worst error per (level, check name) over many cases, reported once each.
struct Worst {
  struct Entry {
    double err = 0;
    std::string where;
  };
  std::map<std::string, Entry> by_name;
  void add(focus::cpu::Isa isa, const std::string& name, double err, const std::string& where) {
    Entry& e = by_name[std::string(focus::cpu::isa_name(isa)) + ": " + name];
    if (!(err <= e.err)) {  // NaN sticks
      e.err = err;
      e.where = where;
    }
  }
  void add(focus::cpu::Isa isa, const std::string& name, const std::vector<float>& got,
           const std::vector<float>& want, const std::string& where) {
    add(isa, name, rel_err(got.data(), want.data(), got.size()), where);
  }
  void report(double tol) {
    for (auto& [name, e] : by_name) {
      char buf[200];
      std::snprintf(buf, sizeof buf, " [worst rel err %.3g at %s, tol %.3g]", e.err, e.where.c_str(), tol);
      check(e.err <= tol, name + buf);
    }
    by_name.clear();
  }
};

template <class F>
bool throws_error(F f) {
  try {
    f();
  } catch (const focus::Error&) {
    return true;
  } catch (...) {
    return false;
  }
  return false;
}

}  // namespace ftest
