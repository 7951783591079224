"""Model builders: one plain function per architecture. The registry (zoo.models.registry) names them."""
