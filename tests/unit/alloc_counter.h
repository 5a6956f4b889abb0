// Process-wide count of global operator new calls (the test binary replaces operator new in
// alloc_counter.cpp; behaviour is otherwise unchanged).
#pragma once
namespace dsv4::testing_support {
long allocation_count();
}
