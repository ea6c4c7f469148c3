package framework

import "k8s.io/apimachinery/pkg/api/resource"

func resourceMilli(v int64) *resource.Quantity {
	return resource.NewMilliQuantity(v, resource.DecimalSI)
}

func resourceBytes(v int64) *resource.Quantity {
	return resource.NewQuantity(v, resource.BinarySI)
}
