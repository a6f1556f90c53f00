// Package commands is the command line of kubectl-ecloud: one cobra command per subcommand
// (pools, ip, spread, why, trace). Each fetches the objects it needs through the kubeconfig
// kubectl would use (genericclioptions: -n, --context, --kubeconfig, …) and hands them to
// package report, which builds and prints the answer.
package commands
