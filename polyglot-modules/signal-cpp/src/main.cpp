// signal-cpp: signal processing over float32 samples, served to polyglot-host.
#include "methods.hpp"
#include "polyglot/worker.hpp"

int main(int argc, char** argv) {
    polyglot::Worker worker("signal-cpp", "1.0.0");
    signal_cpp::add_methods(worker);
    return worker.serve(argc, argv);
}
