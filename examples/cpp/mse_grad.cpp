// A C++ user's MSE layer (third user story): loss = (1/r) Σ_rows (1/(2n)) Σ_i (x - t)^2.
// Reads X and T (row-major text, one value per line), writes its backprop gradient the way
// refgrad reads it. Build and check (see README):
//   g++ -O2 -o mse_grad examples/cpp/mse_grad.cpp
//   refgrad example mse --out case && ./mse_grad case 1 && refgrad check mse --params case/params \
//       --data case/data --analytic case/analytic --dtype float32
// The second argument 1 plants the bug (divides by n instead of r*n); 0 is the fixed code.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static std::vector<float> read(const std::string& path, size_t n) {
    std::vector<float> v(n);
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) { std::perror(path.c_str()); std::exit(2); }
    for (size_t i = 0; i < n; ++i)
        if (std::fscanf(f, "%f", &v[i]) != 1) { std::fprintf(stderr, "%s: short\n", path.c_str()); std::exit(2); }
    std::fclose(f);
    return v;
}

int main(int argc, char** argv) {
    if (argc < 3) { std::fprintf(stderr, "usage: %s CASE_DIR BUG(0|1)\n", argv[0]); return 2; }
    const std::string dir = argv[1];
    const bool bug = std::atoi(argv[2]) != 0;
    const size_t r = 8, n = 8;
    std::vector<float> x = read(dir + "/params/X.txt", r * n), t = read(dir + "/data/T.txt", r * n);
    std::string out = dir + "/analytic";
    std::system(("mkdir -p " + out).c_str());
    FILE* f = std::fopen((out + "/X.txt").c_str(), "w");
    for (size_t i = 0; i < r * n; ++i) {
        float g = bug ? (x[i] - t[i]) / float(n) : (x[i] - t[i]) / float(r * n);
        std::fprintf(f, "%.9g\n", g);
    }
    std::fclose(f);
    return 0;
}
