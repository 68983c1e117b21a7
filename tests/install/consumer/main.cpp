#include <limn/limn.hpp>
#include <iostream>
int main() {
    std::cout << "consumer_cpp: limn " << limn::version() << ", first device " << limn::devices().at(0).id << "\n";
    return limn::resolve_device("cpu") == "cpu" ? 0 : 1;
}
