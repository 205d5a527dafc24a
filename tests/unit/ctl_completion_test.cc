// berthctl completion: the generated bash script completes commands, flags after global
// flags with values, and shells, when bash itself runs it; the zsh script parses in zsh.
#include <gtest/gtest.h>

#include <sstream>

#include "common/fs.h"
#include "common/process.h"
#include "ctl/app.h"

namespace berth::ctl {
namespace {

namespace fs = std::filesystem;

struct Output {
  int code;
  std::string out, err;
};

class CompletionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("berthctl-completion-" + RandomHex(4));
    ASSERT_TRUE(MakeDirs(dir_).ok());
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }

  // COMPREPLY of the bash script for the words of a command line, the last being completed.
  std::vector<std::string> BashComplete(const std::string& script,
                                        const std::vector<std::string>& words) {
    const fs::path file = dir_ / "berthctl.bash";
    EXPECT_TRUE(WriteFileAtomic(file, script).ok());
    std::string array;
    for (const std::string& w : words) array += " '" + w + "'";
    const std::string program = StrCat("source ", file.string(), "; COMP_WORDS=(", array,
                                       "); COMP_CWORD=", words.size() - 1,
                                       "; _berthctl; printf '%s\\n' \"${COMPREPLY[@]}\"");
    StatusOr<ProcessResult> r = RunProcess({"bash", "--norc", "--noprofile", "-c", program});
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->err : r.status().ToString());
    std::vector<std::string> out;
    std::istringstream lines(r.ok() ? r->out : "");
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty()) out.push_back(line);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // berthctl with a config file of its own (empty: no endpoint is needed to complete).
  Output Ctl(std::vector<std::string> args) {
    std::ostringstream out, err;
    std::istringstream in;
    AppIO io;
    io.out = &out;
    io.err = &err;
    io.in = &in;
    io.getenv = [](const std::string&) { return std::nullopt; };
    io.exe_dir = "/nonexistent";
    const fs::path config = dir_ / "crictl.yaml";
    EXPECT_TRUE(WriteFileAtomic(config, "").ok());
    args.insert(args.begin(), {"-c", config.string()});
    int code = ctl::Run(args, io);
    return {code, out.str(), err.str()};
  }

  fs::path dir_;
};

TEST_F(CompletionTest, BashCompletesCommandsFlagsAndShells) {
  Output o = Ctl({"completion"});  // bash by default, as crictl
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("complete -o default -F _berthctl berthctl"), std::string::npos) << o.out;
  EXPECT_EQ(Ctl({"completion", "bash"}).out, o.out);

  EXPECT_EQ(BashComplete(o.out, {"berthctl", "in"}),
            (std::vector<std::string>{"info", "inspect", "inspecti", "inspectp"}));
  // A global flag's value is not taken for the command.
  EXPECT_EQ(BashComplete(o.out, {"berthctl", "-r", "unix:///x.sock", "info", "--o"}),
            (std::vector<std::string>{"--output"}));
  EXPECT_EQ(BashComplete(o.out, {"berthctl", "port-forward", "--"}).empty(), false);
  EXPECT_EQ(BashComplete(o.out, {"berthctl", "completion", ""}),
            (std::vector<std::string>{"bash", "zsh"}));
  EXPECT_EQ(BashComplete(o.out, {"berthctl", "--runtime-e"}),
            (std::vector<std::string>{"--runtime-endpoint"}));
  // Arguments that are not flags (ids, images) are left to the default completion.
  EXPECT_TRUE(BashComplete(o.out, {"berthctl", "rmi", "busy"}).empty());
}

TEST_F(CompletionTest, ZshScriptParsesAndNamesEveryCommand) {
  Output o = Ctl({"completion", "zsh"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(o.out.starts_with("#compdef berthctl\n")) << o.out;
  for (const char* want : {"'info:Display information of the container runtime'", "'--output[",
                           "'pull:", "'port-forward:", "'1:shell:(bash zsh)'"}) {
    EXPECT_NE(o.out.find(want), std::string::npos) << want << " missing in:\n" << o.out;
  }
  const fs::path file = dir_ / "_berthctl";
  ASSERT_TRUE(WriteFileAtomic(file, o.out).ok());
  StatusOr<ProcessResult> r = RunProcess({"zsh", "-n", file.string()});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->err;
}

TEST_F(CompletionTest, UnknownShellIsAnError) {
  Output o = Ctl({"completion", "fish"});
  EXPECT_NE(o.code, 0);
  EXPECT_NE((o.out + o.err).find("fish"), std::string::npos) << o.out << o.err;
}

}  // namespace
}  // namespace berth::ctl
