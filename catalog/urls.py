"""Menu endpoints, mounted under ``/api/``."""

from rest_framework.routers import SimpleRouter

from catalog import api

router = SimpleRouter()
router.register("categories", api.CategoryViewSet, basename="category")
router.register("products", api.ProductViewSet, basename="product")
router.register("modifier-groups", api.ModifierGroupViewSet, basename="modifier-group")

urlpatterns = router.urls
