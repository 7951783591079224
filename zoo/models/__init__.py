"""Model builders: one plain function per architecture. The registry (zoo.registry) names them."""
