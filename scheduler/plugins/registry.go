package plugins

import "github.com/tinykube/tinykube/scheduler/framework"

// Plugin names, as upstream names them where upstream has the plugin.
const (
	NodeUnschedulableName  = "NodeUnschedulable"
	TaintTolerationName    = "TaintToleration"
	NodeReadyName          = "NodeReady"
	NodeAffinityName       = "NodeAffinity"
	NodePortsName          = "NodePorts"
	NodeResourcesFitName   = "NodeResourcesFit"
	BalancedAllocationName = "NodeResourcesBalancedAllocation"
	SelectorSpreadName     = "SelectorSpread"
)

// NewRegistry returns a fresh registry with every in-tree plugin.
func NewRegistry() framework.Registry {
	return framework.Registry{
		NodeUnschedulableName:  func(framework.Handle) (framework.Plugin, error) { return NodeUnschedulable{}, nil },
		TaintTolerationName:    func(framework.Handle) (framework.Plugin, error) { return TaintToleration{}, nil },
		NodeReadyName:          func(framework.Handle) (framework.Plugin, error) { return NodeReady{}, nil },
		NodeAffinityName:       func(framework.Handle) (framework.Plugin, error) { return NodeAffinity{}, nil },
		NodePortsName:          func(framework.Handle) (framework.Plugin, error) { return NodePorts{}, nil },
		NodeResourcesFitName:   func(framework.Handle) (framework.Plugin, error) { return NodeResourcesFit{}, nil },
		BalancedAllocationName: func(framework.Handle) (framework.Plugin, error) { return BalancedAllocation{}, nil },
		SelectorSpreadName:     NewSelectorSpread,
	}
}

// DefaultProfile is the filter order and score weights of upstream's
// default profile, for the plugins we have.
func DefaultProfile() framework.Profile {
	return framework.Profile{
		Filters: []string{
			NodeUnschedulableName,
			TaintTolerationName,
			NodeReadyName,
			NodeAffinityName,
			NodePortsName,
			NodeResourcesFitName,
		},
		Scores: []framework.WeightedPlugin{
			{Name: TaintTolerationName, Weight: 3},
			{Name: NodeAffinityName, Weight: 2},
			{Name: SelectorSpreadName, Weight: 2},
			{Name: NodeResourcesFitName, Weight: 1},
			{Name: BalancedAllocationName, Weight: 1},
		},
	}
}
